"""
Issue 11, group "webhooks, marketplace, partial payments": partial payments are
recorded and listed, marketplace amounts are checked, due retries are never
starved, a postback is parsed once, and a logged-out holder of an account's
checkout id sees its status only.
"""

import json
from datetime import timedelta

import pytest
import responses
from django.utils import timezone
from rest_framework.test import APIClient

from billing.access import user_has_access
from billing.gateways.junglepay import JunglePayGateway
from billing.models import Checkout, ReconciliationItem, Subscription, WebhookEvent
from billing.personal_data import mask_personal_data
from billing.reconciliation import reconcile_payments
from billing.selectors import get_finance_figures
from billing.webhooks import receive_webhook, retry_failed_events
from tests.billing.paymentkit import (
    JP,
    dias,
    jp_checkout,
    junglepay,
    payload,
    post_webhook,
    postback,
    sandbox,
    transaction,
)
from tests.factories import (
    CheckoutFactory,
    PlanFactory,
    SubscriptionFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

Outcome = WebhookEvent.Outcome
Kind = ReconciliationItem.Kind


@pytest.fixture
def jp(settings):
    settings.JUNGLEPAY_API_URL = JP
    return junglepay()


def fetch_answers(checkout, status, **changes):
    responses.upsert(
        responses.GET, f"{JP}/transactions/{checkout.gateway_transaction_id}", json=transaction(checkout, status=status, **changes)
    )


# ---------------------------------------------------------------------------
# 5. partially_paid
# ---------------------------------------------------------------------------


@responses.activate
def test_a_partially_paid_postback_is_recorded_and_listed_but_grants_nothing(client, jp):
    # given: a R$ 39,80 charge of which R$ 10,00 arrived
    user = UserFactory()
    checkout = jp_checkout(jp, user=user)
    fetch_answers(checkout, "partially_paid", paidAmount=1000)

    # when: the postback comes, twice
    for _ in range(2):
        assert post_webhook(client, "junglepay", postback(checkout, status="partially_paid"), token=jp.postback_token).status_code == 200

    # then
    checkout.refresh_from_db()
    assert checkout.status == Checkout.Status.PENDING and checkout.paid_amount_cents == 1000
    item = ReconciliationItem.objects.get()
    assert item.kind == Kind.PARTIAL_PAYMENT and item.checkout == checkout and item.amount_cents == 1000 and not item.resolved
    assert WebhookEvent.objects.get().outcome == Outcome.PROCESSED
    assert not Subscription.objects.exists() and not user_has_access(user)


@responses.activate
def test_reconciliation_lists_a_partial_payment_instead_of_calling_it_pending(jp):
    checkout = jp_checkout(jp, transaction_id="282")
    partial = transaction(checkout, status="partially_paid", paidAmount=1500)
    responses.get(f"{JP}/transactions", json={"data": [partial], "pagination": {"page": 1, "totalPages": 1}})

    [report] = reconcile_payments()
    [again] = reconcile_payments()

    assert report.flagged == 1 and report.matched == 0 and again.flagged == 0
    item = ReconciliationItem.objects.get()
    assert item.kind == Kind.PARTIAL_PAYMENT and item.amount_cents == 1500
    checkout.refresh_from_db()
    assert checkout.status == Checkout.Status.PENDING and checkout.paid_amount_cents == 1500


def test_the_finance_dashboard_shows_partial_payments_awaiting_a_person(admin_client, jp):
    now = timezone.now()
    for index, (cents, resolved) in enumerate([(1000, False), (2500, False), (9900, True)]):
        checkout = jp_checkout(jp, transaction_id=str(900 + index))
        ReconciliationItem.objects.create(
            gateway=jp, transaction_id=str(900 + index), checkout=checkout, kind=Kind.PARTIAL_PAYMENT, amount_cents=cents, resolved=resolved
        )

    figures = get_finance_figures(now=now)
    page = admin_client.get("/admin/billing/financedashboard/").content.decode()

    assert (figures.partial_payments_count, figures.partial_payments_cents) == (2, 3500)
    assert 'id="fin-partial"' in page and "R$ 35,00" in page


# ---------------------------------------------------------------------------
# 9. Dias amounts
# ---------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------
# 13. Retry starvation
# ---------------------------------------------------------------------------


@responses.activate
def test_a_due_event_behind_250_waiting_ones_is_retried(jp):
    # given: 250 failed events, older but not yet due, and one due event received after them
    now = timezone.now()
    WebhookEvent.objects.bulk_create(
        WebhookEvent(
            provider="junglepay", event_id=f"waiting-{n}", body="{}", outcome=Outcome.FAILED, attempts=5,
            received_at=now - timedelta(hours=3), processed_at=now - timedelta(minutes=1), next_attempt_at=now + timedelta(minutes=31),
        )
        for n in range(250)
    )
    checkout = jp_checkout(jp)
    due = WebhookEvent.objects.create(
        provider="junglepay", event_id="due", body=json.dumps(postback(checkout)), outcome=Outcome.FAILED, attempts=1,
        received_at=now - timedelta(hours=1), processed_at=now - timedelta(minutes=5), next_attempt_at=now - timedelta(minutes=3),
    )
    fetch_answers(checkout, "paid")

    # when
    counts = retry_failed_events(now=now)

    # then
    due.refresh_from_db()
    assert counts["retried"] == 1 and due.outcome == Outcome.PROCESSED and due.next_attempt_at is None
    checkout.refresh_from_db()
    assert checkout.status == Checkout.Status.PAID


@responses.activate
def test_a_failed_event_is_scheduled_by_its_backoff(client, jp):
    checkout = jp_checkout(jp)
    responses.get(f"{JP}/transactions/282", status=503)

    post_webhook(client, "junglepay", postback(checkout), token=jp.postback_token)

    event = WebhookEvent.objects.get()
    assert event.outcome == Outcome.FAILED and event.attempts == 1
    assert event.next_attempt_at == event.processed_at + timedelta(minutes=2)


# ---------------------------------------------------------------------------
# Verify → store → process, the body parsed once
# ---------------------------------------------------------------------------


@responses.activate
def test_a_live_postback_is_parsed_once(jp, monkeypatch):
    checkout = jp_checkout(jp)
    fetch_answers(checkout, "paid")
    body = json.dumps(postback(checkout), separators=(",", ":")).encode()
    loads_of_the_body = []
    parses = []
    real_loads, real_parse = json.loads, JunglePayGateway.parse_notification

    def counting_loads(value, *args, **kwargs):
        if value in (body, body.decode()):
            loads_of_the_body.append(value)
        return real_loads(value, *args, **kwargs)

    def counting_parse(self, raw):
        parses.append(raw)
        return real_parse(self, raw)

    monkeypatch.setattr(json, "loads", counting_loads)
    monkeypatch.setattr(JunglePayGateway, "parse_notification", counting_parse)

    result = receive_webhook(provider="junglepay", token=jp.postback_token, body=body)

    assert result.status_code == 200 and result.body["status"] == Outcome.PROCESSED
    assert len(parses) == 1 and len(loads_of_the_body) == 1
    assert WebhookEvent.objects.get().payload == mask_personal_data(real_loads(body))  # stored masked (defect 2)


# ---------------------------------------------------------------------------
# A logged-out holder of an account's checkout id
# ---------------------------------------------------------------------------


@pytest.fixture
def sandbox_gateway(settings):
    settings.DEBUG = False
    settings.SANDBOX_GATEWAY_ALLOWED = True
    return sandbox()


def test_a_logged_out_caller_sees_only_the_status_of_an_accounts_checkout(sandbox_gateway):
    # given: a paid checkout of a logged-in user's account
    user = UserFactory(email="ana@example.com", name="Ana Souza")
    subscription = SubscriptionFactory(user=user)
    checkout = CheckoutFactory(
        user=user, plan=subscription.plan, subscription=subscription, status=Checkout.Status.PAID, paid_at=timezone.now(),
        customer_email="ana@example.com", customer_name="Ana Souza",
    )
    owner = APIClient()
    owner.force_login(user)

    # when
    anonymous = APIClient().get(f"/api/checkout/{checkout.public_id}")
    own = owner.get(f"/api/checkout/{checkout.public_id}")

    # then
    assert anonymous.status_code == 200
    body = anonymous.json()
    assert body["status"] == "paid" and body["total_amount"] == checkout.total_cents and body["paid_at"]
    assert body["subscription"] is None
    assert "ana@example.com" not in anonymous.content.decode() and "Ana Souza" not in anonymous.content.decode()
    assert own.json()["subscription"]["plan"] == subscription.plan.name


def test_pix_for_a_logged_out_holder_answers_the_charge_and_nothing_of_the_customer(sandbox_gateway):
    # given: a renewal checkout of an account; its link was opened logged out (a renewal e-mail)
    user = UserFactory(email="ana@example.com", name="Ana Souza")
    subscription = SubscriptionFactory(user=user)
    checkout = CheckoutFactory(
        user=user, plan=subscription.plan, subscription=subscription, purpose=Checkout.Purpose.RENEWAL,
        customer_email="ana@example.com", customer_name="Ana Souza", customer_phone="11987654321",
    )

    # when
    response = APIClient().post("/api/checkout/pix", {"checkout_id": str(checkout.public_id)}, format="json")

    # then: payable, and the answer is the charge only
    assert response.status_code == 200, response.content
    assert set(response.json()) == {"checkout_id", "transaction_id", "pix_code", "pix_qr_svg", "pix_url", "expires_at", "status", "total_amount"}
    text = response.content.decode()
    for secret in ("ana@example.com", "Ana Souza", "52998224725", "11987654321"):
        assert secret not in text
