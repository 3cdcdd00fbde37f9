"""What ended a subscription (billing.services.common.ended_by_decision) and what a late payment may revive."""

from datetime import timedelta

import pytest

from billing.audit import run_audit
from billing.ledger_models import LedgerEntry
from billing.models import Checkout, Subscription
from billing.services import activate_checkout, create_checkout, withdraw_subscription
from billing.services.common import ended_by_decision
from tests.factories import PlanFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_a_renewal_paid_after_a_withdrawal_is_listed_never_a_new_period(now):
    plan = PlanFactory(price_cents=2990, duration_days=30)
    user = UserFactory()
    first = create_checkout(plan=plan, customer_name="Ana", customer_email=user.email, user=user, now=now)
    subscription = activate_checkout(checkout=first, now=now, transaction_id="tx-1")
    renewal = create_checkout(
        plan=plan, customer_name="Ana", customer_email=user.email, user=user, purpose=Checkout.Purpose.RENEWAL,
        subscription=subscription, now=now + timedelta(days=1),
    )
    withdraw_subscription(subscription=subscription, now=now + timedelta(days=2))

    activate_checkout(checkout=renewal, now=now + timedelta(days=3), transaction_id="tx-2")

    subscription.refresh_from_db()
    renewal.refresh_from_db()
    assert ended_by_decision(subscription)
    assert subscription.status == Subscription.Status.REFUNDED and subscription.last_reason == Subscription.Reason.WITHDRAWN
    assert renewal.status == Checkout.Status.PAID and renewal.subscription is None and renewal.is_late
    assert LedgerEntry.objects.filter(checkout=renewal, kind=LedgerEntry.Kind.LISTED, cause=LedgerEntry.Cause.VOIDED).exists()
    assert run_audit(now=now + timedelta(days=3)).violations == []


def test_the_clock_ending_a_subscription_is_not_a_decision():
    subscription = Subscription(status=Subscription.Status.EXPIRED, last_reason=Subscription.Reason.EXPIRED)
    deleted = Subscription(status=Subscription.Status.CANCELED, last_reason=Subscription.Reason.ACCOUNT_DELETED)
    assert not ended_by_decision(subscription)
    assert ended_by_decision(deleted)
