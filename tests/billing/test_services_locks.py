"""
lock_checkout takes the one lock order from the caller's copy of the
checkout, and never trusts that copy: what it said is checked under the lock.
"""

import pytest

from billing.models import Checkout
from billing.services.locks import lock_checkout
from tests.factories import CheckoutFactory, SubscriptionFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_a_fresh_copy_is_locked_in_three_statements_with_the_plan_alongside(django_assert_num_queries):
    buyer = UserFactory()
    subscription = SubscriptionFactory(user=buyer)
    checkout = CheckoutFactory(user=buyer, subscription=subscription)
    copy = Checkout.objects.get(pk=checkout.pk)

    # The user, the subscriptions, the checkout (with its plan): no re-read of the checkout first.
    with django_assert_num_queries(3):
        locks = lock_checkout(copy)
        assert locks.checkout.plan.name  # came with the locked row

    assert locks.user == buyer and locks.own == subscription and locks.live == subscription


def test_a_copy_that_went_stale_is_read_again_and_the_current_owner_locked():
    checkout = CheckoutFactory(user=None)  # a guest's
    stale = Checkout.objects.get(pk=checkout.pk)
    owner = UserFactory()
    subscription = SubscriptionFactory(user=owner)
    Checkout.objects.filter(pk=checkout.pk).update(user=owner, subscription=subscription)  # claimed meanwhile

    locks = lock_checkout(stale)

    assert locks.user == owner
    assert locks.checkout.user_id == owner.pk and locks.own == subscription
