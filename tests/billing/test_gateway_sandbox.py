"""The sandbox gateway, the registry that picks the active gateway, BR Codes, and the billing.E001 check."""

import pytest

from billing.checks import sandbox_gateway_not_in_production
from billing.gateways import ChargeItem, ChargeRequest, Customer, GatewayUnavailable, get_active_gateway
from billing.models import PaymentGateway
from billing.pix import build_br_code, crc16_ccitt, is_valid_br_code, qr_svg
from billing.services import gateway_for_new_charge
from tests.billing.paymentkit import junglepay, sandbox


def request(amount=2990):
    return ChargeRequest(
        external_ref="0b7e5c9e-3f1d-4e8e-9d7a-2f1c0e6b5a44",
        amount_cents=amount,
        customer=Customer(name="Ana", email="ana@example.com", document="52998224725", phone="11987654321"),
        items=(ChargeItem(title="Plano", unit_price_cents=amount),),
        postback_url="http://testserver/api/webhook/sandbox?token=t",
    )


def test_the_crc_is_the_one_the_br_code_spec_uses():
    assert crc16_ccitt("123456789") == "29B1"  # CRC-16/CCITT-FALSE check value


def test_a_br_code_carries_the_amount_and_a_valid_crc():
    code = build_br_code(key="chave@example.com", amount_cents=3980, merchant_name="Criadora Ltda", merchant_city="São Paulo", txid="sbx_1")
    assert code.startswith("000201") and "540539.80" in code and "5802BR" in code
    assert is_valid_br_code(code)
    assert not is_valid_br_code(code[:-1] + ("0" if code[-1] != "0" else "1"))
    assert qr_svg(code).startswith("<svg")


def test_items_must_add_up_to_the_amount():
    with pytest.raises(ValueError):
        ChargeRequest(
            external_ref="x", amount_cents=100, customer=request().customer,
            items=(ChargeItem(title="a", unit_price_cents=60),), postback_url="u",
        )


@pytest.mark.django_db
def test_the_sandbox_issues_a_scannable_charge(settings):
    settings.DEBUG = True
    with pytest.raises(GatewayUnavailable):
        get_active_gateway()  # a getter never writes: nothing configured, nothing active
    gateway = gateway_for_new_charge()  # issuing a charge switches the sandbox on where it is allowed
    assert gateway.kind == "sandbox" and gateway.config.is_active and get_active_gateway().kind == "sandbox"

    charge = gateway.create_charge(request(2990))

    assert is_valid_br_code(charge.pix_code) and "54052990" not in charge.pix_code and "540529.90" in charge.pix_code
    assert charge.provider_status == "waiting_payment" and charge.amount_cents == 2990
    assert charge.expires_at is not None


@pytest.mark.django_db
def test_the_sandbox_never_serves_where_it_is_not_allowed(settings):
    settings.DEBUG = False
    settings.SANDBOX_GATEWAY_ALLOWED = False
    sandbox()
    with pytest.raises(GatewayUnavailable):
        get_active_gateway()


@pytest.mark.django_db
def test_the_registry_picks_the_one_active_internal_gateway(settings):
    settings.DEBUG = False
    settings.SANDBOX_GATEWAY_ALLOWED = False
    junglepay()
    PaymentGateway.objects.create(kind="dias", is_active=True)  # never serves our own checkout
    assert get_active_gateway().kind == "junglepay"


@pytest.mark.django_db
def test_billing_e001_errors_when_the_sandbox_is_active_in_production(settings):
    sandbox()
    settings.DEBUG = True
    assert sandbox_gateway_not_in_production() == []
    settings.DEBUG = False
    settings.SANDBOX_GATEWAY_ALLOWED = True
    assert sandbox_gateway_not_in_production() == []
    settings.SANDBOX_GATEWAY_ALLOWED = False
    assert [error.id for error in sandbox_gateway_not_in_production(databases=["default"])] == ["billing.E001"]
    # Without databases named (runserver, plain `check`), it reads nothing.
    assert sandbox_gateway_not_in_production() == []


@pytest.mark.django_db
def test_billing_e001_is_quiet_when_a_real_gateway_is_active(settings):
    settings.DEBUG = False
    settings.SANDBOX_GATEWAY_ALLOWED = False
    sandbox(active=False)
    junglepay()
    assert sandbox_gateway_not_in_production(databases=["default"]) == []


@pytest.mark.django_db
def test_the_sandbox_takes_its_test_cards_approved_refused_and_processing_then_simulated(api_client, settings):
    from billing import services
    from billing.cards import make_test_card_hash
    from billing.exceptions import CardRefused
    from billing.models import CardAttempt, Checkout
    from tests.billing.cardkit import card_checkout

    settings.SANDBOX_GATEWAY_ALLOWED = True
    sandbox()
    paid, refused, processing = card_checkout(), card_checkout(), card_checkout()

    services.charge_card(checkout_id=paid.public_id, card_hash=make_test_card_hash(last_digits="4242"), installments=2)
    with pytest.raises(CardRefused):
        services.charge_card(checkout_id=refused.public_id, card_hash=make_test_card_hash(last_digits="0002"))
    attempt = services.charge_card(checkout_id=processing.public_id, card_hash=make_test_card_hash(last_digits="0119"))
    assert attempt.status == CardAttempt.Status.PROCESSING
    # the checkout page's simulate button pays the processing card through the webhook path
    response = api_client.post(f"/api/checkout/{processing.public_id}/simulate", {"outcome": "paid"}, format="json")

    assert response.status_code == 200, response.json()
    statuses = {c.pk: c.status for c in Checkout.objects.filter(pk__in=[paid.pk, refused.pk, processing.pk])}
    assert statuses == {paid.pk: "paid", refused.pk: "pending", processing.pk: "paid"}
    assert CardAttempt.objects.get(checkout=processing).status == CardAttempt.Status.PAID


def test_the_sandbox_serves_its_own_tokenizer_and_junglepay_the_configured_one(settings, db):
    from billing.gateways import gateway_for

    settings.JUNGLEPAY_JS_URL = "https://tokenizer.example.com/v1/js"
    assert gateway_for(sandbox()).tokenizer_url().endswith("js/junglepay-test-tokenizer.js")
    assert gateway_for(junglepay()).tokenizer_url() == "https://tokenizer.example.com/v1/js"
