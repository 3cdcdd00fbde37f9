"""manage.py configure_gateway (contract §6)."""

from datetime import timedelta

import pytest
import responses
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from billing.models import (
    Checkout,
    PaymentGateway,
    WebhookEvent,
)
from billing.services import (
    rotate_postback_token,
)
from tests.billing.paymentkit import (
    JP,
    jp_checkout,
    post_webhook,
    postback,
    transaction,
)

pytestmark = pytest.mark.django_db


def run(*args):
    from io import StringIO

    out = StringIO()
    call_command("configure_gateway", *args, stdout=out)
    return out.getvalue()


def test_it_stores_the_key_encrypted_activates_and_prints_the_postback_url(settings):
    settings.SITE_URL = "https://creatorflix.example"
    PaymentGateway.objects.create(kind="sandbox", is_active=True)

    output = run("junglepay", "--secret-key", "sk_live_abcdef123456", "--public-key", "pk_1", "--activate")

    config = PaymentGateway.objects.get(kind="junglepay")
    assert config.is_active and config.secret_key == "sk_live_abcdef123456" and config.public_key == "pk_1"
    assert not PaymentGateway.objects.get(kind="sandbox").is_active
    assert f"https://creatorflix.example/api/webhook/junglepay?token={config.postback_token}" in output
    assert "sk_live_abcdef123456" not in output and "3456" in output  # masked
    assert output.strip().splitlines()[-1].startswith("configure_gateway junglepay: done")
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret_key FROM billing_paymentgateway WHERE kind = 'junglepay'")
        assert "sk_live" not in cursor.fetchone()[0]


def test_dias_activation_leaves_the_internal_gateway_alone():
    PaymentGateway.objects.create(kind="sandbox", is_active=True)

    output = run("dias", "--activate")

    assert PaymentGateway.objects.get(kind="dias").is_active
    assert PaymentGateway.objects.get(kind="sandbox").is_active
    assert "/api/webhook/dias/payment-sucess?token=" in output  # the spelling Dias has configured


def test_junglepay_needs_a_key(settings):
    settings.JUNGLEPAY_SECRET_KEY = None
    with pytest.raises(CommandError):
        run("junglepay", "--activate")


def test_the_sandbox_cannot_be_activated_in_production(settings):
    settings.DEBUG = False
    settings.SANDBOX_GATEWAY_ALLOWED = False
    with pytest.raises(CommandError):
        run("sandbox", "--activate")
    assert not PaymentGateway.objects.filter(is_active=True).exists()


def test_rotating_the_token_changes_the_url():
    run("sandbox")
    old = PaymentGateway.objects.get(kind="sandbox").postback_token
    output = run("sandbox", "--rotate-token")
    new = PaymentGateway.objects.get(kind="sandbox").postback_token
    assert new != old and new in output and old not in output


@responses.activate
def test_a_postback_with_the_token_before_a_rotation_still_processes(client, jp):
    # given: a charge issued with the current token in its postback URL, then the token is rotated
    checkout = jp_checkout(jp, customer_email="ana@example.com")
    old_token = jp.postback_token
    rotated = rotate_postback_token(gateway=jp)
    assert rotated.postback_token != old_token

    # when: the charge is paid and JunglePay posts to the URL it was given
    responses.upsert(responses.GET, f"{JP}/transactions/282", json=transaction(checkout, status="paid"))
    response = post_webhook(client, "junglepay", postback(checkout), token=old_token)

    # then: authenticated and applied; the new token works too
    assert response.status_code == 200
    checkout.refresh_from_db()
    assert checkout.status == Checkout.Status.PAID
    assert post_webhook(client, "junglepay", postback(checkout, postback_id=2), token=rotated.postback_token).status_code == 200


@pytest.mark.django_db
def test_the_token_before_a_rotation_stops_working_after_its_grace_period(client, jp):
    checkout = jp_checkout(jp)
    old_token = jp.postback_token
    rotate_postback_token(gateway=jp, now=timezone.now() - PaymentGateway.POSTBACK_TOKEN_GRACE - timedelta(minutes=1))

    assert post_webhook(client, "junglepay", postback(checkout), token=old_token).status_code == 401
    assert not WebhookEvent.objects.exists()
