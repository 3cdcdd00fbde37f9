"""
Mixed races on PostgreSQL, with real threads through the real doors: renewal
payments delivered twice (webhook path, via the sandbox), users cancelling at
period end, and two sweeps, all started at the same instant for several users.
The invariants: one live subscription per user, no checkout paid twice, a
period extended exactly once, nothing answered 5xx.
"""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from billing.models import Checkout, Subscription
from billing.services import cancel_subscription, issue_pix_charge, sweep_subscriptions
from tests.concurrency import race
from tests.factories import GatewayFactory, PlanFactory, SubscriptionFactory, UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
USERS = 4


def test_payments_cancels_and_sweeps_racing_keep_every_invariant(settings):
    # given: subscribers two days before their end date, each with a renewal charge issued
    settings.SANDBOX_GATEWAY_ALLOWED = True
    GatewayFactory(kind="sandbox", is_active=True)
    plan = PlanFactory(price_cents=2990, duration_days=30)
    now = timezone.now()
    subscriptions = [
        SubscriptionFactory(user=UserFactory(), plan=plan, start_date=now - timedelta(days=28), end_date=now + timedelta(days=2))
        for _ in range(USERS)
    ]
    original_end = {s.pk: s.end_date for s in subscriptions}
    sweep_subscriptions(now=now)
    renewals = list(Checkout.objects.filter(purpose=Checkout.Purpose.RENEWAL).order_by("pk"))
    assert len(renewals) == USERS
    for renewal in renewals:
        # No paid checkout of ours to copy CPF and phone from: the subscriber gives them (renewal page).
        issue_pix_charge(checkout_id=renewal.public_id, cpf="52998224725", phone="11987654321")

    # when: for each user, the payment twice, a cancel and a sweep, all at once
    statuses = []

    def pay(renewal):
        def call():
            response = Client().post(
                f"/api/checkout/{renewal.public_id}/simulate", {"outcome": "paid"}, content_type="application/json"
            )
            statuses.append(response.status_code)

        return call

    def cancel(subscription):
        return lambda: cancel_subscription(subscription=Subscription.objects.get(pk=subscription.pk), reason="race")

    calls = []
    for subscription, renewal in zip(subscriptions, renewals, strict=True):
        calls += [pay(renewal), pay(renewal), cancel(subscription)]
    calls += [lambda: sweep_subscriptions(), lambda: sweep_subscriptions()]
    errors = race(*calls)

    # then
    assert errors == []
    assert statuses and all(code < 500 for code in statuses), statuses
    for subscription, renewal in zip(subscriptions, renewals, strict=True):
        user_subscriptions = Subscription.objects.filter(user=subscription.user)
        assert user_subscriptions.live().count() == 1
        assert user_subscriptions.count() == 1  # no second subscription was opened
        renewal.refresh_from_db()
        assert renewal.status == Checkout.Status.PAID  # money is never ignored
        subscription.refresh_from_db()
        assert subscription.end_date == original_end[subscription.pk] + timedelta(days=30)  # extended exactly once
        # Last action wins, consistently: a cancel after the payment stands; a PIX paid after
        # the cancel is the user choosing to continue (PIX is never debited without them).
        if subscription.cancel_at_period_end:
            assert subscription.last_reason == Subscription.Reason.CANCELED_BY_USER
        else:
            assert subscription.last_reason == Subscription.Reason.RENEWED
    assert Checkout.objects.filter(purpose=Checkout.Purpose.RENEWAL).count() == USERS  # the second sweep issued none
