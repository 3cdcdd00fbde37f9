"""Dias Marketplace postbacks: PENDING → pending subscription, PAID → active, plan by price, accounts for new payers."""

from datetime import date, timedelta

import pytest
from django.utils import timezone

from accounts.models import User
from accounts.services import declare_birth_date
from billing.access import user_has_access
from billing.models import ReconciliationItem, Subscription, WebhookEvent
from tests.billing.paymentkit import (
    dias,
    payload,
    post_webhook,
)
from tests.factories import (
    PlanFactory,
    SubscriptionFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def gateway():
    return dias()


def deliver(client, gateway, body, path="payment-success"):
    return post_webhook(client, f"dias/{path}", body, token=gateway.postback_token)


def test_pending_then_paid_activates_the_pending_subscription(client, gateway, monthly):
    user = UserFactory(email="carla@example.com")

    assert deliver(client, gateway, payload("dias_pending.json")).status_code == 200
    pending = Subscription.objects.get()
    assert pending.status == Subscription.Status.PENDING and pending.user == user
    assert pending.external_id == "DM-2026-000123"  # externalRef wins over id
    assert pending.plan == monthly and pending.plan_match_rule == Subscription.PlanMatch.EXACT_PRICE
    assert not user_has_access(user)

    assert deliver(client, gateway, payload("dias_paid.json"), path="payment-sucess").status_code == 200

    subscription = Subscription.objects.get()
    assert subscription.pk == pending.pk and subscription.status == Subscription.Status.ACTIVE
    assert (subscription.end_date - subscription.start_date).days == 30
    assert user_has_access(user)


def test_paid_alone_creates_and_activates(client, gateway, monthly):
    UserFactory(email="carla@example.com")

    deliver(client, gateway, payload("dias_paid.json"))
    deliver(client, gateway, payload("dias_paid.json"))  # re-delivered
    deliver(client, gateway, payload("dias_pending.json"))  # late PENDING

    subscription = Subscription.objects.get()
    assert subscription.status == Subscription.Status.ACTIVE
    assert WebhookEvent.objects.filter(outcome=WebhookEvent.Outcome.PROCESSED).count() == 2


def test_an_unknown_email_gets_an_account_and_a_set_password_email(client, gateway, monthly, mailoutbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        deliver(client, gateway, payload("dias_paid.json"))

    user = User.objects.get(email="carla@example.com")
    assert user.name == "Carla Dias" and not user.has_usable_password()
    assert [m.to for m in mailoutbox] == [["carla@example.com"]] * 2  # the set-password e-mail and the receipt
    # The marketplace sends no birth date: the subscription is live, locked content waits for the age (contract §8).
    assert Subscription.objects.live().filter(user=user).exists() and not user_has_access(user)
    user = declare_birth_date(user=user, birth_date=date(1990, 5, 17))
    assert user_has_access(user)


def test_a_payment_by_a_subscriber_extends_the_live_subscription(client, gateway, monthly):
    user = UserFactory(email="carla@example.com")
    live = SubscriptionFactory(user=user, plan=monthly)
    end_date = live.end_date

    deliver(client, gateway, payload("dias_paid.json"))
    deliver(client, gateway, payload("dias_paid.json"))

    live.refresh_from_db()
    assert live.status == Subscription.Status.ACTIVE
    assert (live.end_date - end_date).days == 30  # once, not twice
    assert Subscription.objects.live().filter(user=user).count() == 1
    assert Subscription.objects.get(external_id="DM-2026-000123").status == Subscription.Status.CANCELED


def test_an_unknown_status_is_stored_and_ignored(client, gateway, monthly):
    body = payload("dias_paid.json")
    body["status"] = "CHARGEBACK_REVIEW"

    assert deliver(client, gateway, body).status_code == 200

    assert WebhookEvent.objects.get().outcome == WebhookEvent.Outcome.IGNORED
    assert not Subscription.objects.exists()


def test_the_webhook_needs_its_token_and_the_gateway_enabled(client, gateway, monthly):
    assert post_webhook(client, "dias/payment-success", payload("dias_paid.json"), token="nope").status_code == 401
    gateway.is_active = False
    gateway.save()
    assert deliver(client, gateway, payload("dias_paid.json")).status_code == 401
    assert not WebhookEvent.objects.exists()


def test_a_payment_without_any_plan_fails_and_is_kept_for_replay(client, gateway):
    assert deliver(client, gateway, payload("dias_paid.json")).status_code == 200

    event = WebhookEvent.objects.get()
    assert event.outcome == WebhookEvent.Outcome.FAILED and "plan" in event.error
    assert not Subscription.objects.exists()

    PlanFactory(price_cents=2990)
    from billing.webhooks import process_event

    assert process_event(event=event) == WebhookEvent.Outcome.PROCESSED
    assert Subscription.objects.get().status == Subscription.Status.ACTIVE


def test_a_body_without_transaction_or_payer_is_stored_and_ignored(client, gateway, monthly):
    assert deliver(client, gateway, {"status": "PAID", "amount": 2990}).status_code == 200
    assert deliver(client, gateway, {"id": "x1", "status": "PAID", "amount": 2990, "payer": {}}).status_code == 200

    assert set(WebhookEvent.objects.values_list("outcome", flat=True)) == {WebhookEvent.Outcome.IGNORED}
    assert not Subscription.objects.exists()


Outcome = WebhookEvent.Outcome


Kind = ReconciliationItem.Kind


@pytest.fixture
def marketplace():
    return dias()


def deliver_dias(client, gateway, body):
    return post_webhook(client, "dias/payment-sucess", body, token=gateway.postback_token)


@pytest.mark.parametrize("amount", [1, 2989, 7500, None])
def test_a_marketplace_payment_matching_no_price_grants_nothing_and_is_listed(client, marketplace, monthly, amount):
    PlanFactory(price_cents=7990, duration_days=90)
    body = payload("dias_paid.json")
    body["amount"] = amount

    assert deliver_dias(client, marketplace, body).status_code == 200

    assert not Subscription.objects.exists()
    item = ReconciliationItem.objects.get()
    assert item.kind == Kind.MARKETPLACE_AMOUNT_MISMATCH and item.gateway == marketplace
    assert item.transaction_id == "DM-2026-000123" and item.amount_cents == amount
    event = WebhookEvent.objects.get()
    assert event.outcome == Outcome.IGNORED and "listed for a person" in event.error


def test_a_paid_that_differs_from_its_pending_amount_grants_nothing_and_is_listed(client, marketplace, monthly):
    # given: PENDING announced R$ 29,90 (the monthly plan); a dearer plan also exists
    PlanFactory(price_cents=7990, duration_days=90)
    deliver_dias(client, marketplace, payload("dias_pending.json"))
    pending = Subscription.objects.get()
    assert pending.external_amount_cents == 2990

    # when: the PAID says R$ 79,90 — a price, but not the one PENDING announced
    body = payload("dias_paid.json")
    body["amount"] = 7990
    assert deliver_dias(client, marketplace, body).status_code == 200

    # then
    pending.refresh_from_db()
    assert pending.status == Subscription.Status.PENDING and not user_has_access(pending.user)
    item = ReconciliationItem.objects.get()
    assert item.kind == Kind.MARKETPLACE_AMOUNT_MISMATCH and item.detail["expected_amount"] == 2990 and item.amount_cents == 7990


def test_a_paid_confirming_its_pending_amount_activates_even_after_a_reprice(client, marketplace, monthly):
    deliver_dias(client, marketplace, payload("dias_pending.json"))
    monthly.price_cents = 3490
    monthly.save()

    deliver_dias(client, marketplace, payload("dias_paid.json"))

    subscription = Subscription.objects.get()
    assert subscription.status == Subscription.Status.ACTIVE and subscription.plan == monthly
    assert not ReconciliationItem.objects.exists()


def test_a_marketplace_payment_in_grace_extends_from_the_end_date(client, marketplace, monthly):
    # given: a subscriber whose period ended a day ago (in grace, past due)
    now = timezone.now()
    user = UserFactory(email="carla@example.com")
    live = SubscriptionFactory(
        user=user, plan=monthly, status=Subscription.Status.PAST_DUE, start_date=now - timedelta(days=31), end_date=now - timedelta(days=1)
    )
    end_date = live.end_date

    # when
    deliver_dias(client, marketplace, payload("dias_paid.json"))

    # then: the 30 days bought follow the old end date, as for our own renewals
    live.refresh_from_db()
    assert live.status == Subscription.Status.ACTIVE
    assert live.end_date == end_date + timedelta(days=30)
