"""The JunglePay client, against `responses` standing in for JunglePay."""

import base64
import json
import time
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
import requests
import responses
from django.utils import timezone
from responses import matchers

from billing.gateways import ChargeStatus, GatewayRejected, GatewayUnavailable, gateway_for
from billing.gateways.base import gateway_budget
from billing.gateways.junglepay import (
    charge_from_transaction,
)
from billing.models import (
    ChargeAttempt,
    Checkout,
)
from billing.services import (
    create_checkout,
    issue_pix_charge,
)
from config.api_errors import status_for
from tests.billing.paymentkit import (
    JP,
    SECRET,
    junglepay,
    payload,
)
from tests.concurrency import race
from tests.factories import OrderBumpFactory, PlanFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def jp(jp, settings):
    """conftest's JunglePay, the postback URLs on the site's public address."""
    settings.SITE_URL = "https://creatorflix.example"
    return jp


@pytest.fixture
def checkout():
    plan = PlanFactory(name="Plano Mensal", price_cents=2990)
    bump = OrderBumpFactory(name="Bônus", price_cents=990)
    return create_checkout(
        plan=plan,
        customer_name="Ana Souza",
        customer_email="ana@example.com",
        customer_document="529.982.247-25",
        customer_phone="(11) 98765-4321",
        order_bump_ids=[bump.pk],
        payment_method="pix",
        purpose=Checkout.Purpose.NEW,
    )


def created(checkout, **changes):
    data = payload("junglepay_transaction_waiting.json", ref=checkout.public_id, token="t")
    data.update(changes)
    return data


@responses.activate
def test_it_sends_exactly_what_junglepay_expects(jp, checkout):
    responses.post(f"{JP}/transactions", json=created(checkout), status=200)

    issue_pix_charge(checkout_id=checkout.public_id)

    request = responses.calls[0].request
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(f"{SECRET}:x".encode()).decode()
    body = json.loads(request.body)
    assert body["amount"] == 3980 == sum(i["unitPrice"] * i["quantity"] for i in body["items"])
    assert body["paymentMethod"] == "pix"
    assert body["customer"] == {
        "name": "Ana Souza",
        "email": "ana@example.com",
        "phone": "11987654321",
        "document": {"number": "52998224725", "type": "cpf"},
    }
    assert body["items"] == [
        {"title": "Plano Mensal", "unitPrice": 2990, "quantity": 1, "tangible": False},
        {"title": "Bônus", "unitPrice": 990, "quantity": 1, "tangible": False},
    ]
    assert body["externalRef"] == str(checkout.public_id)
    assert body["postbackUrl"] == f"https://creatorflix.example/api/webhook/junglepay?token={jp.postback_token}"
    assert body["pix"] == {"expiresInDays": 1}
    checkout.refresh_from_db()
    assert checkout.gateway_transaction_id == "282"
    assert checkout.pix_code.startswith("000201")
    assert checkout.pix_expires_at is not None


@responses.activate
def test_a_500_is_a_clear_error_and_the_retry_looks_up_before_creating(jp, checkout):
    # given: the create answers 500, and at first JunglePay has no such charge
    post = responses.post(f"{JP}/transactions", json={"message": "Internal error"}, status=500)
    lookup = responses.get(
        f"{JP}/transactions", json={"data": []}, match=[matchers.query_param_matcher({"externalRef": str(checkout.public_id)})]
    )

    with pytest.raises(GatewayUnavailable) as excinfo:
        issue_pix_charge(checkout_id=checkout.public_id)

    assert excinfo.value.code == "gateway_unavailable" and status_for(excinfo.value) == 503
    checkout.refresh_from_db()
    assert checkout.charge_attempts.get().outcome == ChargeAttempt.Outcome.UNCONFIRMED and checkout.gateway_transaction_id == ""

    # when: the buyer tries again and the charge turns out to exist after all
    responses.replace(
        responses.GET, f"{JP}/transactions", json={"data": [created(checkout)]},
        match=[matchers.query_param_matcher({"externalRef": str(checkout.public_id)})],
    )
    again = issue_pix_charge(checkout_id=checkout.public_id)

    # then: that charge is used; JunglePay got one create, never two
    assert again.gateway_transaction_id == "282"
    assert post.call_count == 1
    assert lookup.call_count >= 1


@responses.activate
def test_a_timeout_finds_the_charge_that_was_created_anyway(jp, checkout):
    post = responses.post(f"{JP}/transactions", body=requests.exceptions.ReadTimeout("read timed out"))
    responses.get(f"{JP}/transactions", json=[created(checkout)])

    result = issue_pix_charge(checkout_id=checkout.public_id)

    assert result.gateway_transaction_id == "282"
    assert post.call_count == 1


@responses.activate
def test_a_non_json_answer_is_a_clear_error_and_never_a_second_blind_create(jp, checkout):
    post = responses.post(f"{JP}/transactions", body="<html>Bad gateway</html>", status=200, content_type="text/html")
    responses.get(f"{JP}/transactions", json={"data": []})

    with pytest.raises(GatewayUnavailable):
        issue_pix_charge(checkout_id=checkout.public_id)
    assert post.call_count == 1

    # The next attempt looks first (nothing there), and only then creates.
    responses.replace(responses.POST, f"{JP}/transactions", json=created(checkout))
    issue_pix_charge(checkout_id=checkout.public_id)
    methods = [call.request.method for call in responses.calls]
    assert methods == ["POST", "GET", "GET", "POST"]


@responses.activate
def test_a_refusal_shows_the_providers_message(jp, checkout):
    responses.post(f"{JP}/transactions", json={"message": "customer.document inválido"}, status=400)

    with pytest.raises(GatewayRejected) as excinfo:
        issue_pix_charge(checkout_id=checkout.public_id)

    assert excinfo.value.code == "gateway_rejected"
    assert status_for(excinfo.value) == 400
    assert excinfo.value.message == "customer.document inválido"
    assert len(responses.calls) == 1  # a refusal is an answer: no lookup, no retry


@responses.activate
def test_an_auth_failure_does_not_leak_the_providers_words(jp, checkout):
    responses.post(f"{JP}/transactions", json={"message": f"invalid key {SECRET}"}, status=401)

    with pytest.raises(GatewayRejected) as excinfo:
        issue_pix_charge(checkout_id=checkout.public_id)

    assert status_for(excinfo.value) == 502
    assert SECRET not in excinfo.value.message


@responses.activate
def test_a_charge_without_a_pix_code_is_a_gateway_error(jp, checkout):
    data = created(checkout)
    data["pix"] = {"qrcode": None}
    responses.post(f"{JP}/transactions", json=data)

    with pytest.raises(GatewayRejected):
        issue_pix_charge(checkout_id=checkout.public_id)
    checkout.refresh_from_db()
    assert checkout.gateway_transaction_id == ""


@responses.activate
def test_gets_are_retried_with_backoff(jp, checkout):
    responses.get(f"{JP}/transactions/282", status=503)
    responses.get(f"{JP}/transactions/282", json=created(checkout, status="paid"))

    charge = gateway_for(jp).fetch_charge("282")

    assert charge.status == ChargeStatus.PAID
    assert len(responses.calls) == 2


@responses.activate
def test_the_circuit_opens_after_repeated_failures(jp):
    failing = responses.get(f"{JP}/transactions/1", body=requests.exceptions.ConnectionError("refused"))
    gateway = gateway_for(jp)
    for _ in range(5):
        with pytest.raises(GatewayUnavailable):
            gateway.fetch_charge("1")
    calls = failing.call_count

    with pytest.raises(GatewayUnavailable):
        gateway_for(jp).fetch_charge("1")

    assert failing.call_count == calls  # answered at once, without calling JunglePay


@responses.activate
def test_the_api_answers_gateway_errors_in_the_error_shape(jp, checkout, api_client):
    responses.post(f"{JP}/transactions", status=502, body="upstream down")
    responses.get(f"{JP}/transactions", json={"data": []})

    response = api_client.post("/api/checkout/pix", {"checkout_id": str(checkout.public_id)}, format="json")

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "gateway_unavailable"
    assert "Traceback" not in response.content.decode()


@responses.activate
def test_statuses_map_to_what_we_act_upon(jp, checkout):
    gateway = gateway_for(jp)
    expected = {
        "waiting_payment": ChargeStatus.PENDING,
        "paid": ChargeStatus.PAID,
        "refused": ChargeStatus.FAILED,
        "canceled": ChargeStatus.CANCELED,
        "refunded": ChargeStatus.REFUNDED,
        "chargedback": ChargeStatus.REFUNDED,
        "in_protest": ChargeStatus.REFUNDED,
        "something_new": ChargeStatus.UNKNOWN,
    }
    for provider_status, status in expected.items():
        responses.upsert(responses.GET, f"{JP}/transactions/282", json=created(checkout, status=provider_status))
        assert gateway.fetch_charge("282").status == status


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@responses.activate
def test_concurrent_pix_requests_create_one_charge(settings):


    # given: a slow JunglePay, and four tabs asking for the PIX of one checkout at once
    settings.JUNGLEPAY_API_URL = JP
    junglepay()
    plan = PlanFactory(price_cents=3980)
    checkout = create_checkout(
        plan=plan, customer_name="Ana Souza", customer_email="ana@example.com", customer_document="52998224725",
        customer_phone="11987654321", purpose=Checkout.Purpose.NEW,
    )

    def slow_create(request):
        time.sleep(0.2)
        return 200, {}, json.dumps(created(checkout))

    post = responses.add_callback(responses.POST, f"{JP}/transactions", callback=slow_create, content_type="application/json")
    ids = []

    def pay():
        ids.append(issue_pix_charge(checkout_id=checkout.public_id).gateway_transaction_id)

    # when
    assert race(pay, pay, pay, pay) == []

    # then
    assert ids == ["282"] * 4
    assert post.call_count == 1


@responses.activate
def test_a_refusal_that_quotes_the_key_is_not_shown(jp, checkout):
    responses.post(f"{JP}/transactions", json={"message": f"key {SECRET} cannot create pix"}, status=400)

    with pytest.raises(GatewayRejected) as excinfo:
        issue_pix_charge(checkout_id=checkout.public_id)

    assert SECRET not in excinfo.value.message and status_for(excinfo.value) == 400


@responses.activate
def test_gets_inside_a_request_budget_are_retried_within_it(jp, checkout):
    # given: one 503, then the answer, while a request's budget runs
    responses.get(f"{JP}/transactions/282", status=503)
    responses.get(f"{JP}/transactions/282", json=created(checkout, status="paid"))

    # when
    with gateway_budget(5):
        charge = gateway_for(jp).fetch_charge("282")

    # then: retried by the client itself (urllib3's retries know no deadline)
    assert charge.status == ChargeStatus.PAID
    assert len(responses.calls) == 2


@responses.activate
def test_gets_inside_a_budget_stop_when_it_is_spent(jp):
    responses.get(f"{JP}/transactions/282", status=503)

    with gateway_budget(0.7), pytest.raises(GatewayUnavailable):
        gateway_for(jp).fetch_charge("282")

    assert len(responses.calls) == 1  # the 0.3 s backoff left no time for a second try


SAO_PAULO = ZoneInfo("America/Sao_Paulo")


@pytest.mark.django_db
def test_a_pix_expiration_day_is_read_as_the_end_of_that_day_in_sao_paulo():
    day = timezone.localdate() + timedelta(days=1)

    charge = charge_from_transaction({"id": 1, "status": "waiting_payment", "pix": {"qrcode": "x", "expirationDate": day.isoformat()}})

    local = charge.expires_at.astimezone(SAO_PAULO)
    assert local.date() == day
    assert (local.hour, local.minute, local.second) == (23, 59, 59)
