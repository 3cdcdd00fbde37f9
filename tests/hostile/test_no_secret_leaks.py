"""
No secret leaves the building: with real-looking gateway keys, the field
encryption key and AWS keys configured, and a customer's CPF stored, none of
them appears in any admin page, API answer, site page or log line.
"""

import contextlib
import io
import json
import logging

import pytest
import responses
from django.contrib import admin
from django.urls import NoReverseMatch, reverse

from billing.models import Checkout, PaymentGateway
from config.logging import JsonFormatter
from tests.factories import CheckoutFactory, SubscriptionFactory, UserFactory

JUNGLEPAY_SECRET = "sk_live_TOPSECRET_4f9a8b7c6d5e"
AWS_SECRET = "AWSsecretKEY+abcdefghij1234567890xyz"
CPF_DIGITS = "93421876509"
CPF_FORMATTED = "934.218.765-09"


@pytest.fixture
def log_stream():
    """The real stdout handler's output (JSON lines, redaction filter included)."""
    handler = next(h for h in logging.getLogger().handlers if isinstance(h.formatter, JsonFormatter))
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    yield buffer
    handler.setStream(previous)


@pytest.fixture
def world(db, settings):
    settings.AWS_ACCESS_KEY_ID = "AKIAEXAMPLEKEY000001"
    settings.AWS_SECRET_ACCESS_KEY = AWS_SECRET
    settings.JUNGLEPAY_API_URL = "https://jp.test/v1"
    PaymentGateway.objects.update_or_create(kind="sandbox", defaults={"is_active": False})
    gateway, _ = PaymentGateway.objects.update_or_create(
        kind="junglepay", defaults={"secret_key": JUNGLEPAY_SECRET, "public_key": "pk_live_public", "is_active": True}
    )
    customer = UserFactory(email="cliente@example.com")
    subscription = SubscriptionFactory(user=customer)
    checkout = CheckoutFactory(
        user=customer,
        plan=subscription.plan,
        subscription=subscription,
        customer_email=customer.email,
        customer_document=CPF_DIGITS,
        gateway=gateway,
        gateway_transaction_id="9001",
        status=Checkout.Status.PAID,
    )
    return {"gateway": gateway, "customer": customer, "checkout": checkout}


def _secrets(settings, world) -> list[str]:
    return [
        JUNGLEPAY_SECRET,
        AWS_SECRET,
        settings.FIELD_ENCRYPTION_KEY.split(",")[0],
        world["gateway"].postback_token,
        CPF_DIGITS,
        CPF_FORMATTED,
    ]


def _assert_clean(text: str, secrets: list[str], where: str) -> None:
    for secret in secrets:
        assert secret not in text, f"{where} shows a secret ({secret[:6]}…)"


def _admin_urls(world) -> list[str]:
    urls = [reverse("admin:index")]
    for model in admin.site._registry:
        info = (model._meta.app_label, model._meta.model_name)
        try:
            urls.append(reverse("admin:%s_%s_changelist" % info))
        except NoReverseMatch:
            continue
        obj = model._default_manager.first()
        if obj is not None:
            with contextlib.suppress(NoReverseMatch):
                urls.append(reverse("admin:%s_%s_change" % info, args=[obj.pk]))
    return urls


def test_no_admin_page_shows_a_secret_or_a_cpf(client, superuser, world, settings):
    client.force_login(superuser)
    secrets = _secrets(settings, world)
    urls = _admin_urls(world)

    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        _assert_clean(response.content.decode(), [s for s in secrets if s != world["gateway"].postback_token], url)

    assert len(urls) > 15  # every registered model was visited


def test_the_checkout_csv_export_masks_the_cpf(client, superuser, world, settings):
    client.force_login(superuser)
    changelist = reverse("admin:billing_checkout_changelist")
    pk = world["checkout"].pk

    response = client.post(changelist, {"action": "export_csv", "_selected_action": [pk]})

    body = b"".join(response.streaming_content) if response.streaming else response.content
    _assert_clean(body.decode(), _secrets(settings, world), "CSV export")


def test_no_api_answer_or_site_page_shows_a_secret(client, world, settings):
    client.force_login(world["customer"])
    secrets = _secrets(settings, world)
    paths = [
        "/api/plans",
        "/api/models",
        "/api/me/subscription",
        f"/api/checkout/{world['checkout'].public_id}",
        "/",
        "/plans/",
        "/account/",
        "/api/schema/",
    ]

    for path in paths:
        response = client.get(path)
        assert response.status_code == 200, path
        _assert_clean(response.content.decode(), secrets, path)


@responses.activate
def test_no_log_line_shows_a_secret(client, world, settings, log_stream):
    # given: JunglePay failing loudly, echoing what it was sent
    responses.add(responses.POST, "https://jp.test/v1/transactions", status=500, body=f"boom Authorization: Basic {JUNGLEPAY_SECRET}")
    responses.add(responses.GET, "https://jp.test/v1/transactions", json={"data": []})
    pending = CheckoutFactory(customer_document=CPF_DIGITS, plan=world["checkout"].plan)

    # when: a charge fails, a webhook arrives with a wrong token and with the right one
    client.post("/api/checkout/pix", {"checkout_id": str(pending.public_id)}, content_type="application/json")
    client.post("/api/webhook/junglepay?token=wrong-token", data=json.dumps({"id": 1}), content_type="application/json")
    client.post(
        f"/api/webhook/junglepay?token={world['gateway'].postback_token}",
        data=json.dumps({"id": 2, "type": "transaction", "data": {"id": 9001, "customer": {"document": {"number": CPF_DIGITS}}}}),
        content_type="application/json",
    )
    logging.getLogger("billing").error("customer document %s, key %s", CPF_FORMATTED, f"secret_key={JUNGLEPAY_SECRET}")

    # then
    lines = log_stream.getvalue()
    assert lines.count("\n") >= 2  # the flows above did log
    _assert_clean(lines, _secrets(settings, world), "a log line")
