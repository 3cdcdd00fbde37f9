"""
Personal data at rest (billing.personal_data, billing.fields): the customer's CPF, phone and
e-mail inside stored provider payloads (the checkout's gateway response, the
webhook event's body and payload) are encrypted or masked in the database,
masked on every admin page, and webhook events are for finance staff only.
"""

import importlib.util
import json
from pathlib import Path

import pytest
import responses
from django.apps import apps
from django.contrib.auth.models import Permission
from django.db import connection
from django.urls import reverse

import billing.migrations
from billing.fields import encrypt
from billing.models import Checkout, PaymentGateway, WebhookEvent
from billing.personal_data import mask_personal_data, mask_personal_text
from billing.services import issue_pix_charge
from tests.billing.paymentkit import (
    JP,
    dias,
    jp_checkout,
    payload,
    post_webhook,
    postback,
    sandbox,
    transaction,
)
from tests.factories import CheckoutFactory, PlanFactory

pytestmark = pytest.mark.django_db

# What the recorded JunglePay payloads say about the customer (tests/billing/fixtures).
CPF = "52998224725"
CPF_FORMATTED = "529.982.247-25"
PHONE = "11987654321"
EMAIL = "ana@example.com"
DIAS_EMAIL = "carla@example.com"
PERSONAL = [CPF, CPF_FORMATTED, PHONE, EMAIL, DIAS_EMAIL]


@pytest.fixture
def paid_checkout(client, jp):
    """A JunglePay checkout charged and paid through the real code paths: create, postback, fetch."""
    # The checkout's own e-mail and phone differ from what the gateway echoes back, so that a page
    # showing the checkout's customer fields (finance staff may see those) cannot hide a payload leak.
    checkout = jp_checkout(jp, transaction_id="", customer_email="cliente@exemplo.com.br", customer_phone="21999998888")
    with responses.RequestsMock() as gateway:
        gateway.post(f"{JP}/transactions", json={**transaction(checkout), "id": 282})
        issue_pix_charge(checkout_id=checkout.public_id)
        checkout.refresh_from_db()
        gateway.get(f"{JP}/transactions/282", json=transaction(checkout, status="paid"))
        response = post_webhook(client, "junglepay", postback(checkout), token=jp.postback_token)

    assert response.status_code == 200 and response.json()["status"] == "processed"
    checkout.refresh_from_db()
    assert checkout.status == Checkout.Status.PAID
    return checkout


@pytest.fixture
def stored(client, paid_checkout):
    """Every way a provider payload gets stored: a JunglePay postback (above), a Dias event, a malformed body."""
    gateway = dias()
    post_webhook(client, "dias/payment-success", payload("dias_paid.json"), token=gateway.postback_token)
    post_webhook(
        client, "dias/payment-success", f'{{"payer": {{"email": "{EMAIL}", "document": "{CPF_FORMATTED}", "phone": "{PHONE}"',
        token=gateway.postback_token,
    )
    assert WebhookEvent.objects.count() == 3
    return paid_checkout


def _raw(sql: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return json.dumps([[str(value) for value in row] for row in cursor.fetchall()], ensure_ascii=False)


def _assert_no_personal_data(text: str, where: str) -> None:
    for value in PERSONAL:
        assert value not in text, f"{where} shows {value}"


def test_stored_webhook_events_and_gateway_responses_keep_no_cpf_phone_or_email_in_clear(stored):
    # when: the columns are read as the database holds them
    events = _raw("SELECT body, payload FROM billing_webhookevent")
    responses_ = _raw("SELECT gateway_response FROM billing_checkout")

    # then
    _assert_no_personal_data(events, "billing_webhookevent")
    _assert_no_personal_data(responses_, "billing_checkout.gateway_response")
    # and the code still reads them whole: processing re-parses the body, the sandbox reads its side
    event = WebhookEvent.objects.get(provider=PaymentGateway.Kind.JUNGLEPAY)
    assert json.loads(event.body)["data"]["customer"]["document"]["number"] == CPF
    assert event.payload["data"]["customer"] == {
        "name": "Ana Souza", "email": "a***@example.com", "phone": "*********21", "document": {"number": "***.***.***-25", "type": "cpf"},
    }
    assert stored.gateway_response["customer"]["document"]["number"] == CPF


def test_a_sandbox_charge_simulated_and_paid_keeps_its_side_encrypted(client, settings):
    # given
    settings.SANDBOX_GATEWAY_ALLOWED = True
    sandbox()
    checkout = CheckoutFactory(plan=PlanFactory(price_cents=2990), plan_price_cents=2990, customer_email=EMAIL)
    assert client.post("/api/checkout/pix", {"checkout_id": str(checkout.public_id)}, content_type="application/json").status_code == 200

    # when
    response = client.post(f"/api/checkout/{checkout.public_id}/simulate", {"outcome": "paid"}, content_type="application/json")

    # then
    assert response.status_code == 200 and response.json()["status"] == Checkout.Status.PAID
    checkout.refresh_from_db()
    assert checkout.gateway_response["status"] == "paid" and checkout.gateway_response["customer"]["email"] == EMAIL
    _assert_no_personal_data(_raw("SELECT gateway_response FROM billing_checkout"), "billing_checkout.gateway_response")
    _assert_no_personal_data(_raw("SELECT body, payload FROM billing_webhookevent"), "billing_webhookevent")


def _admin_pages(checkout) -> list[str]:
    events = list(WebhookEvent.objects.order_by("pk"))
    return [
        reverse("admin:billing_checkout_changelist"),
        reverse("admin:billing_checkout_change", args=[checkout.pk]),
        reverse("admin:billing_webhookevent_changelist"),
        *(reverse("admin:billing_webhookevent_change", args=[event.pk]) for event in events),
        reverse("admin:billing_reconciliationitem_changelist"),
    ]


@pytest.fixture
def finance_client(client, staff_user):
    staff_user.user_permissions.set(Permission.objects.filter(content_type__app_label="billing"))
    client.force_login(staff_user)
    return client


@pytest.fixture
def staff_client(client, staff_user):
    """Staff with every billing model permission except the finance one."""
    staff_user.user_permissions.set(Permission.objects.filter(content_type__app_label="billing").exclude(codename="view_finance"))
    client.force_login(staff_user)
    return client


def test_finance_staff_see_payloads_with_the_cpf_phone_and_email_masked(finance_client, stored):
    pages = {url: finance_client.get(url) for url in _admin_pages(stored)}

    for url, response in pages.items():
        assert response.status_code == 200, url
        _assert_no_personal_data(response.content.decode(), url)
    checkout_page = pages[reverse("admin:billing_checkout_change", args=[stored.pk])].content.decode()
    assert "***.***.***-25" in checkout_page and "a***@example.com" in checkout_page  # masked, still recognisable


def test_a_superuser_sees_payloads_masked_too(admin_client, stored):
    for url in _admin_pages(stored):
        response = admin_client.get(url)
        assert response.status_code == 200, url
        _assert_no_personal_data(response.content.decode(), url)


def test_staff_without_the_finance_permission_cannot_see_webhook_events(staff_client, stored):
    event = WebhookEvent.objects.first()

    assert staff_client.get(reverse("admin:billing_webhookevent_changelist")).status_code == 403
    assert staff_client.get(reverse("admin:billing_webhookevent_change", args=[event.pk])).status_code == 403
    assert staff_client.get(reverse("admin:billing_checkout_change", args=[stored.pk])).status_code == 403
    assert reverse("admin:billing_webhookevent_changelist") not in staff_client.get(reverse("admin:index")).content.decode()


def test_masking_a_payload_hides_personal_data_and_keeps_the_rest():
    body = payload("junglepay_transaction_waiting.json", ref="r", token="t")

    masked = mask_personal_data(body)

    _assert_no_personal_data(json.dumps(masked), "the masked payload")
    assert masked["customer"]["document"] == {"number": "***.***.***-25", "type": "cpf"}
    assert masked["pix"] == body["pix"] and masked["items"] == body["items"] and masked["amount"] == body["amount"]
    assert mask_personal_data({"note": CPF_FORMATTED, "contact": [EMAIL]}) == {"note": "***.***.***-25", "contact": ["a***@example.com"]}
    assert mask_personal_text(f"cpf {CPF_FORMATTED} tel +55 (11) 98765-4321 {EMAIL}") == (
        "cpf ***.***.***-25 tel ***********21 a***@example.com"
    )


def _migration():
    """The data migration, found by name so the lead's renumbering does not break this test."""
    path = next(Path(billing.migrations.__file__).parent.glob("*_encrypt_provider_payloads.py"))
    spec = importlib.util.spec_from_file_location("encrypt_provider_payloads", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_migration_encrypts_rows_stored_in_clear_and_can_run_twice(jp):
    # given: rows as the previous schema wrote them (plain JSON text, plain body, unmasked payload)
    checkout = jp_checkout(jp)
    event = WebhookEvent.objects.create(provider=PaymentGateway.Kind.JUNGLEPAY, event_id="686401", body="")
    already = WebhookEvent.objects.create(provider=PaymentGateway.Kind.JUNGLEPAY, event_id="686402", body="{}")
    plain = json.dumps(postback(checkout))
    charge = transaction(checkout)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE billing_checkout SET gateway_response = %s WHERE id = %s", [json.dumps(charge), checkout.pk])
        cursor.execute("UPDATE billing_webhookevent SET body = %s, payload = %s WHERE id = %s", [plain, plain, event.pk])
        cursor.execute("UPDATE billing_webhookevent SET body = %s WHERE id = %s", [encrypt('{"id": 2}'), already.pk])

    # when
    migration = _migration()
    with connection.schema_editor() as editor:
        migration.encrypt_existing_rows(apps, editor)
        migration.encrypt_existing_rows(apps, editor)

    # then
    _assert_no_personal_data(_raw("SELECT body, payload FROM billing_webhookevent"), "billing_webhookevent")
    _assert_no_personal_data(_raw("SELECT gateway_response FROM billing_checkout"), "billing_checkout.gateway_response")
    checkout.refresh_from_db()
    event.refresh_from_db()
    already.refresh_from_db()
    assert checkout.gateway_response == charge
    assert event.body == plain and event.payload["data"]["customer"]["email"] == "a***@example.com"
    assert already.body == '{"id": 2}'  # encrypted once, not twice
