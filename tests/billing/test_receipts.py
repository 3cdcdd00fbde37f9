"""Receipts (contract §3): e-mailed for every confirmed payment, HTML + text in the payer's language; GET /api/me/receipts; the printable page."""

import pytest
from django.core import mail
from django.utils import timezone
from rest_framework.test import APIClient

from billing import services
from billing.gateways import ChargeStatus
from billing.ledger_models import LedgerEntry
from billing.models import Checkout
from tests.billing.paymentkit import dias
from tests.factories import CheckoutFactory, PlanFactory, SubscriptionFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def seller(settings):
    settings.SELLER_NAME = "CreatorFlix Conteúdo Digital Ltda."
    settings.SELLER_DOCUMENT = "12345678000190"
    settings.SELLER_ADDRESS = "Av. Paulista, 1000, São Paulo - SP"
    settings.SUPPORT_EMAIL = "suporte@creatorflix.example"


def paid_checkout(django_capture_on_commit_callbacks, **fields):
    plan = fields.pop("plan", None) or PlanFactory(name="Trimestral", price_cents=7990, duration_days=90)
    checkout = CheckoutFactory(
        plan=plan,
        bumps_cents=990,
        items=[{"title": "Trimestral", "unit_price_cents": 7990, "quantity": 1}, {"title": "Pack de fotos bônus", "unit_price_cents": 990, "quantity": 1}],
        gateway_transaction_id="jp-282",
        customer_name="Ana Souza",
        customer_document="52998224725",
        **fields,
    )
    with django_capture_on_commit_callbacks(execute=True):
        services.activate_checkout(checkout=checkout, paid_at=timezone.now(), transaction_id="jp-282")
    return Checkout.objects.get(pk=checkout.pk)


def receipts_in(outbox):
    return [message for message in outbox if "Recibo" in message.subject or "Receipt" in message.subject]


def test_a_confirmed_payment_emails_a_receipt_in_html_and_text(django_capture_on_commit_callbacks):
    checkout = paid_checkout(django_capture_on_commit_callbacks)

    [message] = receipts_in(mail.outbox)

    assert message.to == [checkout.customer_email]
    html = message.alternatives[0][0]
    assert message.alternatives[0][1] == "text/html"
    for part in (message.body, html):
        assert "CreatorFlix Conteúdo Digital Ltda." in part and "12.345.678/0001-90" in part
        assert "Ana Souza" in part and "***.***.***-25" in part and "52998224725" not in part
        assert "Trimestral · 90 dias" in part and "Pack de fotos bônus" in part
        assert "R$ 89,80" in part and "PIX" in part and "jp-282" in part
        assert f"/account/receipts/{checkout.public_id}/" in part and "/account/" in part
    assert message.subject.startswith("Recibo")
    assert checkout.receipt_sent_at is not None


def test_the_receipt_is_in_the_payers_language(django_capture_on_commit_callbacks):
    UserFactory(email="ana@example.com", language="en", email_confirmed_at=timezone.now())

    paid_checkout(django_capture_on_commit_callbacks, customer_email="ana@example.com")

    [message] = receipts_in(mail.outbox)
    assert message.subject.startswith("Receipt") and "90 days" in message.body and "Total paid" in message.body


def test_a_renewal_emails_its_receipt_and_a_repeated_payment_sends_no_second(django_capture_on_commit_callbacks):
    subscription = SubscriptionFactory()
    checkout = CheckoutFactory(
        user=subscription.user, subscription=subscription, plan=subscription.plan, purpose=Checkout.Purpose.RENEWAL,
        items=[{"title": "renewal", "unit_price_cents": subscription.plan.price_cents, "quantity": 1}],
    )
    for _attempt in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            services.activate_checkout(checkout=checkout, paid_at=timezone.now())

    [message] = receipts_in(mail.outbox)
    assert "renovação" in message.body


def test_a_receipt_without_a_gateway_transaction_has_no_empty_transaction_line(django_capture_on_commit_callbacks):
    subscription = SubscriptionFactory()
    checkout = CheckoutFactory(
        user=subscription.user, subscription=subscription, plan=subscription.plan, purpose=Checkout.Purpose.RENEWAL,
        items=[{"title": "renewal", "unit_price_cents": subscription.plan.price_cents, "quantity": 1}],
    )
    with django_capture_on_commit_callbacks(execute=True):
        services.activate_checkout(checkout=checkout, paid_at=timezone.now())

    [message] = receipts_in(mail.outbox)
    for part in (message.body, message.alternatives[0][0]):
        assert "Transação" not in part
        assert "Número do recibo" in part


def test_a_free_trial_has_no_receipt(django_capture_on_commit_callbacks):
    checkout = CheckoutFactory(plan_price_cents=0, is_trial=True)
    with django_capture_on_commit_callbacks(execute=True):
        services.activate_checkout(checkout=checkout)

    assert receipts_in(mail.outbox) == []


def test_api_me_receipts_lists_the_users_payments_newest_first(django_capture_on_commit_callbacks):
    user = UserFactory(email_confirmed_at=timezone.now())
    first = paid_checkout(django_capture_on_commit_callbacks, user=user, customer_email=user.email)
    CheckoutFactory(user=user)  # unpaid: no receipt
    client = APIClient()
    client.force_authenticate(user)

    body = client.get("/api/me/receipts").json()

    assert body["count"] == 1
    [row] = body["results"]
    assert set(row) == {"checkout_id", "paid_at", "amount", "description", "method", "card", "installments", "transaction_id", "receipt_url"}
    assert row["checkout_id"] == str(first.public_id) and row["amount"] == 8980 and row["method"] == "pix"
    assert row["card"] is None and row["installments"] == 1 and row["transaction_id"] == "jp-282"
    assert row["receipt_url"].endswith(f"/account/receipts/{first.public_id}/")


def test_api_me_receipts_needs_a_login():
    assert APIClient().get("/api/me/receipts").status_code in (401, 403)


def test_the_printable_receipt_is_the_owners_only(client, django_capture_on_commit_callbacks):
    user = UserFactory(email_confirmed_at=timezone.now())
    checkout = paid_checkout(django_capture_on_commit_callbacks, user=user, customer_email=user.email)
    client.force_login(user)

    page = client.get(f"/account/receipts/{checkout.public_id}/")

    assert page.status_code == 200
    assert "data-print" in page.content.decode() and "R$ 89,80" in page.content.decode()
    assert f"/account/receipts/{checkout.public_id}/" in client.get("/account/").content.decode()
    client.force_login(UserFactory())
    assert client.get(f"/account/receipts/{checkout.public_id}/").status_code == 404


def test_a_marketplace_payment_emails_a_receipt(django_capture_on_commit_callbacks):
    from billing.gateways import ChargeStatus
    from tests.billing.paymentkit import dias

    dias()
    PlanFactory(name="Mensal", price_cents=2990, duration_days=30)
    with django_capture_on_commit_callbacks(execute=True):
        services.record_marketplace_payment(external_id="dias-77", status=ChargeStatus.PAID, amount_cents=2990, email="bia@example.com", name="Bia Lima")

    [message] = receipts_in(mail.outbox)
    assert message.to == ["bia@example.com"]
    assert "Bia Lima" in message.body and "R$ 29,90" in message.body and "dias-77" in message.body
    assert "Marketplace" in message.body and "Mensal · 30 dias" in message.body


def test_marketplace_payments_have_receipts_in_the_api_and_a_printable_page(client, django_capture_on_commit_callbacks):
    dias()
    PlanFactory(name="Mensal", price_cents=2990, duration_days=30)
    user = UserFactory(email="bia@example.com", name="Bia Lima")
    with django_capture_on_commit_callbacks(execute=True):
        services.record_marketplace_payment(external_id="dias-77", status=ChargeStatus.PAID, amount_cents=2990, email=user.email, name="Bia Lima")
    assert LedgerEntry.objects.filter(cause=LedgerEntry.Cause.MARKETPLACE, kind=LedgerEntry.Kind.PAYMENT).count() == 1
    client.force_login(user)

    [row] = client.get("/api/me/receipts").json()["results"]

    assert row["checkout_id"] is None and row["method"] == "marketplace" and row["amount"] == 2990
    assert row["transaction_id"] == "dias-77" and row["receipt_url"].endswith("/account/receipts/marketplace/dias-77/")
    page = client.get("/account/receipts/marketplace/dias-77/")
    assert page.status_code == 200 and "R$ 29,90" in page.content.decode() and "dias-77" in page.content.decode()
    [message] = receipts_in(mail.outbox)
    assert "/account/receipts/marketplace/dias-77/" in message.body
    client.force_login(UserFactory())
    assert client.get("/account/receipts/marketplace/dias-77/").status_code == 404
