"""Races the row locks exist for, on PostgreSQL with real threads."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import User
from billing.models import Checkout, Subscription
from billing.services import activate_checkout, create_checkout
from tests.concurrency import race
from tests.factories import PlanFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
NOW = timezone.now().replace(microsecond=0)


def test_two_deliveries_of_the_same_payment_activate_once():
    plan = PlanFactory(duration_days=30)
    checkout = create_checkout(plan=plan, customer_name="Ana", customer_email="ana@example.com", now=NOW)

    errors = race(*(lambda: activate_checkout(checkout=checkout, now=NOW) for _ in range(2)))

    assert not errors
    sub = Subscription.objects.get()
    assert sub.end_date == NOW + timedelta(days=30)


def test_two_first_payments_for_one_new_email_make_one_account_and_one_live_subscription():
    plan = PlanFactory(duration_days=30)
    checkouts = [create_checkout(plan=plan, customer_name="Ana", customer_email="ana@example.com", now=NOW) for _ in range(2)]

    errors = race(*(lambda c=c: activate_checkout(checkout=c, now=NOW) for c in checkouts))

    assert not errors
    user = User.objects.get(email="ana@example.com")
    live = Subscription.objects.live().get(user=user)
    assert live.end_date == NOW + timedelta(days=60)  # both payments count, none is lost
    assert Checkout.objects.filter(status=Checkout.Status.PAID, subscription=live).count() == 2
