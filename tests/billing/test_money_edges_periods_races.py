"""Issue 11, lock order: flows that used to take the same rows in opposite orders, raced on PostgreSQL."""

from datetime import timedelta

import pytest
from django.utils import timezone

from billing.models import Checkout, Subscription
from billing.services import (
    activate_checkout,
    cancel_subscription_now,
    change_plan,
    create_checkout,
    refund_checkout,
)
from tests.concurrency import race
from tests.factories import PlanFactory, UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
NOW = timezone.now().replace(microsecond=0)


def subscribed(plan):
    """A paid first checkout (its live subscription) and an open renewal charge of it."""
    user = UserFactory()
    first = create_checkout(plan=plan, customer_name="Ana", customer_email=user.email, user=user, now=NOW)
    sub = activate_checkout(checkout=first, now=NOW)
    renewal = create_checkout(
        plan=plan, customer_name="Ana", customer_email=user.email, user=user,
        purpose=Checkout.Purpose.RENEWAL, subscription=sub, now=NOW,
    )
    return user, sub, Checkout.objects.get(pk=first.pk), renewal


@pytest.mark.parametrize("attempt", range(3))
def test_a_refund_racing_a_renewal_payment_never_deadlocks_and_ends_refunded(attempt):
    plan = PlanFactory(duration_days=30)
    _user, sub, first, renewal = subscribed(plan)

    errors = race(
        lambda: refund_checkout(checkout=first, now=NOW),
        lambda: activate_checkout(checkout=renewal, now=NOW),
    )

    assert not errors
    sub.refresh_from_db()
    assert sub.status == Subscription.Status.REFUNDED  # whichever came first, the refund has the last word


@pytest.mark.parametrize("attempt", range(3))
def test_a_purchase_and_an_upgrade_racing_a_renewal_payment_never_deadlock(attempt):
    plan = PlanFactory(duration_days=30, price_cents=2990)
    dearer = PlanFactory(duration_days=30, price_cents=7990)
    user, sub, _first, renewal = subscribed(plan)
    purchase = create_checkout(plan=plan, customer_name="Ana", customer_email=user.email, user=user, now=NOW)

    errors = race(
        lambda: activate_checkout(checkout=renewal, now=NOW),
        lambda: activate_checkout(checkout=purchase, now=NOW),
        lambda: change_plan(subscription=sub, plan=dearer, now=NOW),
    )

    assert not errors
    assert Subscription.objects.live().filter(user=user).count() == 1


@pytest.mark.parametrize("attempt", range(3))
def test_the_admins_cancel_now_racing_a_renewal_payment_never_deadlocks(attempt):
    plan = PlanFactory(duration_days=30)
    _user, sub, _first, renewal = subscribed(plan)

    errors = race(
        lambda: cancel_subscription_now(subscription=sub, now=NOW),
        lambda: activate_checkout(checkout=renewal, now=NOW),
    )

    assert not errors
    sub.refresh_from_db()
    assert sub.status == Subscription.Status.CANCELED
    assert sub.end_date <= NOW + timedelta(days=60)
