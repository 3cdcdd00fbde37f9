"""Races the row locks exist for, on PostgreSQL with real threads."""

from datetime import timedelta

import pytest

from accounts.models import User
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


def test_two_deliveries_of_the_same_payment_activate_once(now):
    plan = PlanFactory(duration_days=30)
    checkout = create_checkout(plan=plan, customer_name="Ana", customer_email="ana@example.com", now=now)

    errors = race(*(lambda: activate_checkout(checkout=checkout, now=now) for _ in range(2)))

    assert not errors
    sub = Subscription.objects.get()
    assert sub.end_date == now + timedelta(days=30)


def test_two_first_payments_for_one_new_email_make_one_account_and_one_live_subscription(now):
    plan = PlanFactory(duration_days=30)
    checkouts = [create_checkout(plan=plan, customer_name="Ana", customer_email="ana@example.com", now=now) for _ in range(2)]

    errors = race(*(lambda c=c: activate_checkout(checkout=c, now=now) for c in checkouts))

    assert not errors
    user = User.objects.get(email="ana@example.com")
    live = Subscription.objects.live().get(user=user)
    assert live.end_date == now + timedelta(days=60)  # both payments count, none is lost
    assert Checkout.objects.filter(status=Checkout.Status.PAID, subscription=live).count() == 2


def subscribed(plan, *, now):
    """A paid first checkout (its live subscription) and an open renewal charge of it."""
    user = UserFactory()
    first = create_checkout(plan=plan, customer_name="Ana", customer_email=user.email, user=user, now=now)
    sub = activate_checkout(checkout=first, now=now)
    renewal = create_checkout(
        plan=plan, customer_name="Ana", customer_email=user.email, user=user,
        purpose=Checkout.Purpose.RENEWAL, subscription=sub, now=now,
    )
    return user, sub, Checkout.objects.get(pk=first.pk), renewal


@pytest.mark.parametrize("attempt", range(3))
def test_a_refund_racing_a_renewal_payment_never_deadlocks_and_ends_refunded(attempt, now):
    plan = PlanFactory(duration_days=30)
    _user, sub, first, renewal = subscribed(plan, now=now)

    errors = race(
        lambda: refund_checkout(checkout=first, now=now),
        lambda: activate_checkout(checkout=renewal, now=now),
    )

    assert not errors
    sub.refresh_from_db()
    assert sub.status == Subscription.Status.REFUNDED  # whichever came first, the refund has the last word


@pytest.mark.parametrize("attempt", range(3))
def test_a_purchase_and_an_upgrade_racing_a_renewal_payment_never_deadlock(attempt, now):
    plan = PlanFactory(duration_days=30, price_cents=2990)
    dearer = PlanFactory(duration_days=30, price_cents=7990)
    user, sub, _first, renewal = subscribed(plan, now=now)
    purchase = create_checkout(plan=plan, customer_name="Ana", customer_email=user.email, user=user, now=now)

    errors = race(
        lambda: activate_checkout(checkout=renewal, now=now),
        lambda: activate_checkout(checkout=purchase, now=now),
        lambda: change_plan(subscription=sub, plan=dearer, now=now),
    )

    assert not errors
    assert Subscription.objects.live().filter(user=user).count() == 1


@pytest.mark.parametrize("attempt", range(3))
def test_the_admins_cancel_now_racing_a_renewal_payment_never_deadlocks(attempt, now):
    plan = PlanFactory(duration_days=30)
    _user, sub, _first, renewal = subscribed(plan, now=now)

    errors = race(
        lambda: cancel_subscription_now(subscription=sub, now=now),
        lambda: activate_checkout(checkout=renewal, now=now),
    )

    assert not errors
    sub.refresh_from_db()
    assert sub.status == Subscription.Status.CANCELED
    assert sub.end_date <= now + timedelta(days=60)
