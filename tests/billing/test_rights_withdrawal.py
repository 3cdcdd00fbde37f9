"""Withdrawal (CDC art. 49, contract §3 /api/me/subscription/withdraw): inside and outside the window, per gateway."""

from datetime import timedelta

import pytest
import responses
from django.utils import timezone
from rest_framework.test import APIClient

from billing import refunds, selectors, services
from billing.access import user_has_access
from billing.models import Checkout, RefundRequest, Subscription, WebhookEvent
from tests.billing.paymentkit import JP, RefundRecorder, jp_checkout, post_webhook, postback, sandbox, transaction
from tests.factories import OrderBumpFactory, PlanFactory, UserFactory

pytestmark = pytest.mark.django_db

BUYER = {"payment_method": "pix", "name": "Ana Souza", "cpf": "529.982.247-25", "phone": "(11) 98765-4321", "birth_date": "1990-05-17"}


@pytest.fixture
def sbx(settings):
    settings.DEBUG = False
    settings.SANDBOX_GATEWAY_ALLOWED = True
    return sandbox()


def _client(user):
    client = APIClient()
    client.force_login(user)
    return client


def _buy_on_the_sandbox(client, user, plan, bump_ids=()):
    body = {**BUYER, "plan_id": plan.pk, "email": user.email, "order_bump_ids": list(bump_ids)}
    checkout_id = client.post("/api/checkout/process", body, format="json").json()["checkout_id"]
    _pay_on_the_sandbox(client, checkout_id)
    return checkout_id


def _pay_on_the_sandbox(client, checkout_id):
    assert client.post("/api/checkout/pix", {"checkout_id": checkout_id}, format="json").status_code == 200
    response = client.post(f"/api/checkout/{checkout_id}/simulate", {"outcome": "paid"}, format="json")
    assert response.json()["webhook_status"] == 200, response.content


def test_withdrawing_on_the_sandbox_refunds_plan_bumps_and_upgrade_through_the_webhook(sbx):
    user = UserFactory()
    client = _client(user)
    monthly, yearly = PlanFactory(price_cents=2990), PlanFactory(price_cents=7990, duration_days=90)
    _buy_on_the_sandbox(client, user, monthly, bump_ids=[OrderBumpFactory(price_cents=990).pk])
    upgrade = client.post("/api/me/subscription/change-plan", {"plan_id": yearly.pk}, format="json").json()
    _pay_on_the_sandbox(client, upgrade["checkout"]["checkout_id"])
    paid = sum(Checkout.objects.filter(user=user, status=Checkout.Status.PAID).values_list("total_cents", flat=True))
    assert paid == 3980 + upgrade["checkout"]["total_amount"] and user_has_access(user)

    response = client.post("/api/me/subscription/withdraw")

    assert response.status_code == 200, response.content
    assert response.json() == {"status": "refunded", "amount": paid}
    assert not user_has_access(user)
    subscription = Subscription.objects.get(user=user)
    assert (subscription.status, subscription.last_reason) == ("refunded", "withdrawn")
    assert set(Checkout.objects.filter(user=user).values_list("status", flat=True)) == {"refunded"}
    assert all(c.refunded_at for c in Checkout.objects.filter(user=user))
    assert set(RefundRequest.objects.values_list("status", "closed_by")) == {("refunded", "gateway")}
    # Each refund reached our records as the sandbox's `refunded` postback, through the webhook.
    refund_events = [e for e in WebhookEvent.objects.filter(provider="sandbox") if '"refunded"' in e.body]
    assert len(refund_events) == 2 and {e.outcome for e in refund_events} == {"processed"}
    figures = selectors.get_finance_figures()
    assert (figures.refunds_30d_count, figures.refunds_30d_cents) == (2, paid)
    assert (figures.pending_refunds_count, figures.pending_refunds_cents) == (0, 0)
    assert figures.revenue_30d_cents == 0  # revenue is what was paid and kept


def test_withdrawing_from_a_junglepay_subscription_queues_the_refund_for_staff(jp):
    user = UserFactory()
    checkout = jp_checkout(jp, user=user, customer_email=user.email)
    services.activate_checkout(checkout=checkout)
    with responses.RequestsMock():  # no call to JunglePay: it documents no refund endpoint
        response = _client(user).post("/api/me/subscription/withdraw")

    assert response.status_code == 200, response.content
    assert response.json() == {"status": "refund_pending", "amount": 3980}
    assert not user_has_access(user)
    refund = RefundRequest.objects.get()
    assert (refund.amount_cents, refund.status, refund.checkout.customer_email) == (3980, "pending", user.email)
    assert refund.deadline == refund.requested_at + RefundRequest.DEADLINE
    checkout.refresh_from_db()
    assert checkout.status == Checkout.Status.PAID  # the money is still ours until the refund is made
    figures = selectors.get_finance_figures()
    assert (figures.pending_refunds_count, figures.pending_refunds_cents, figures.refunds_30d_cents) == (1, 3980, 0)
    assert figures.revenue_30d_cents == 3980


@responses.activate
def test_a_pending_withdrawal_refund_closes_when_junglepays_refunded_postback_arrives(client, jp):
    user = UserFactory()
    checkout = jp_checkout(jp, user=user, customer_email=user.email)
    services.activate_checkout(checkout=checkout)
    services.withdraw_subscription(subscription=Subscription.objects.get(user=user))

    responses.upsert(responses.GET, f"{JP}/transactions/{checkout.gateway_transaction_id}", json=transaction(checkout, status="refunded"))
    assert post_webhook(client, "junglepay", postback(checkout, status="refunded"), token=jp.postback_token).status_code == 200

    refund = RefundRequest.objects.get()
    assert (refund.status, refund.closed_by) == ("refunded", "gateway") and refund.closed_at
    checkout.refresh_from_db()
    assert checkout.status == Checkout.Status.REFUNDED
    figures = selectors.get_finance_figures()
    assert (figures.pending_refunds_count, figures.refunds_30d_cents) == (0, 3980)


def test_staff_marking_a_hand_made_refund_done_refunds_the_checkout(admin_client, jp):
    user = UserFactory()
    checkout = jp_checkout(jp, user=user, customer_email=user.email)
    services.activate_checkout(checkout=checkout)
    services.withdraw_subscription(subscription=Subscription.objects.get(user=user))
    refund = RefundRequest.objects.get()

    listing = admin_client.get("/admin/billing/refundrequest/")
    assert listing.status_code == 200 and user.email in listing.content.decode()
    admin_client.post(
        "/admin/billing/refundrequest/", {"action": "mark_refunded", "_selected_action": [refund.pk]}
    )

    refund.refresh_from_db()
    assert (refund.status, refund.closed_by) == ("refunded", "admin")
    checkout.refresh_from_db()
    assert checkout.status == Checkout.Status.REFUNDED


def test_after_the_window_the_api_answers_409_with_the_date_it_closed(jp, settings):
    settings.WITHDRAWAL_DAYS = 7
    user = UserFactory()
    checkout = jp_checkout(jp, user=user, customer_email=user.email)
    paid_at = timezone.now() - timedelta(days=7, minutes=1)
    services.activate_checkout(checkout=checkout, paid_at=paid_at, now=paid_at)

    response = _client(user).post("/api/me/subscription/withdraw")

    assert response.status_code == 409, response.content
    error = response.json()["error"]
    assert error["code"] == "withdrawal_window_closed"
    assert error["fields"]["closed_at"] == [(paid_at + timedelta(days=7)).isoformat()]
    assert user_has_access(user) and not RefundRequest.objects.exists()


def test_the_account_page_offers_withdrawal_only_inside_the_window(client, jp):
    user = UserFactory()
    checkout = jp_checkout(jp, user=user, customer_email=user.email)
    services.activate_checkout(checkout=checkout)
    client.force_login(user)
    assert 'data-testid="withdraw"' in client.get("/account/").content.decode()

    Checkout.objects.filter(pk=checkout.pk).update(paid_at=timezone.now() - timedelta(days=8))
    assert 'data-testid="withdraw"' not in client.get("/account/").content.decode()


def test_the_account_page_withdraws(client, sbx):
    user = UserFactory()
    api = _client(user)
    _buy_on_the_sandbox(api, user, PlanFactory(price_cents=2990))
    client.force_login(user)

    response = client.post("/account/withdraw/", follow=True)

    assert response.status_code == 200
    assert not user_has_access(user)
    assert RefundRequest.objects.get().status == "refunded"
    assert 'data-testid="withdraw"' not in response.content.decode()


def test_withdrawing_twice_refunds_once(jp):
    user = UserFactory()
    checkout = jp_checkout(jp, user=user, customer_email=user.email)
    services.activate_checkout(checkout=checkout)
    subscription = Subscription.objects.get(user=user)

    first = services.withdraw_subscription(subscription=subscription)
    second = services.withdraw_subscription(subscription=subscription)

    assert [r.pk for r in first.refunds] == [r.pk for r in second.refunds] and RefundRequest.objects.count() == 1


@responses.activate
def test_a_withdrawal_refund_is_asked_for_the_transaction_that_paid_not_the_checkouts_latest_charge(jp, monkeypatch):
    # given: a checkout paid by its first QR (282), whose fresh QR 283 was issued meanwhile
    user = UserFactory()
    checkout = jp_checkout(jp, user=user, customer_email=user.email, transaction_id="282")
    services.activate_checkout(checkout=checkout, transaction_id="282")
    Checkout.objects.filter(pk=checkout.pk).update(gateway_transaction_id="283")
    asked = []
    monkeypatch.setattr(refunds, "gateway_for", lambda config: RefundRecorder(asked))

    # when
    refunds.withdraw(subscription=Subscription.objects.get(user=user))

    # then: the refund names the money that arrived
    assert asked == [("282", 3980)]


def test_withdrawing_again_never_asks_the_gateway_for_a_second_refund(jp, monkeypatch):
    user = UserFactory()
    checkout = jp_checkout(jp, user=user, customer_email=user.email)
    services.activate_checkout(checkout=checkout)
    asked = []
    monkeypatch.setattr(refunds, "gateway_for", lambda config: RefundRecorder(asked))
    subscription = Subscription.objects.get(user=user)

    first = refunds.withdraw(subscription=subscription)
    second = refunds.withdraw(subscription=subscription)

    assert len(asked) == 1
    assert (first.status, second.status) == ("refund_pending", "refund_pending")
