"""
JunglePay misbehaving, against a real local HTTP server: slower than our read
timeout, failing, answering garbage. What the buyer sees is a clear error or
their charge; what is stored is consistent; no checkout ever gets two charges.
"""

import time

import pytest

from billing.models import ChargeAttempt, Checkout, PaymentGateway
from tests.factories import CheckoutFactory
from tests.fakes.junglepay import FakeJunglePay

pytestmark = pytest.mark.django_db


@pytest.fixture
def fake(settings, monkeypatch):
    with FakeJunglePay() as server:
        settings.JUNGLEPAY_API_URL = server.url
        monkeypatch.setattr("billing.gateways.junglepay.READ_TIMEOUT", 0.3)
        PaymentGateway.objects.update_or_create(kind="sandbox", defaults={"is_active": False})
        PaymentGateway.objects.update_or_create(kind="junglepay", defaults={"secret_key": "sk_test_fault", "is_active": True})
        yield server


def _pix(api_client, checkout):
    return api_client.post("/api/checkout/pix", {"checkout_id": str(checkout.public_id)}, format="json")


def test_a_create_slower_than_the_read_timeout_finds_its_charge_instead_of_making_a_second(api_client, fake):
    # given: JunglePay creates the charge but answers after our read timeout
    fake.create_delay = 1.0
    checkout = CheckoutFactory()

    # when: the buyer asks for the PIX, then asks again
    first = _pix(api_client, checkout)
    fake.create_delay = 0
    second = _pix(api_client, checkout)

    # then: the charge was found by its externalRef, stored once, and never created twice
    assert first.status_code == 200, first.json()
    assert second.json()["transaction_id"] == first.json()["transaction_id"]
    assert fake.posts == 1
    assert len(fake.transactions) == 1
    checkout.refresh_from_db()
    assert checkout.gateway_transaction_id == str(first.json()["transaction_id"])


@pytest.mark.parametrize("mode", ["fail_before_create", "garbage_before_create"])
def test_a_failing_or_garbled_provider_gives_a_clear_error_and_a_later_retry_one_charge(api_client, fake, mode):
    # given
    fake.create_mode = mode
    checkout = CheckoutFactory()

    # when
    failed = _pix(api_client, checkout)

    # then: a clear error, nothing stored as charged, the checkout still payable
    assert failed.status_code == 503
    assert failed.json()["error"]["code"] == "gateway_unavailable"
    assert "Traceback" not in failed.content.decode()
    checkout.refresh_from_db()
    assert checkout.status == Checkout.Status.PENDING and checkout.gateway_transaction_id == ""

    # when the provider recovers, the buyer retries and gets exactly one charge
    fake.create_mode = "ok"
    retried = _pix(api_client, checkout)
    assert retried.status_code == 200
    assert len(fake.transactions) == 1


def test_repeated_failures_open_the_circuit_and_answer_at_once(api_client, fake):
    fake.create_mode = "fail_before_create"
    for _ in range(8):
        _pix(api_client, CheckoutFactory())
    posts_before = fake.posts

    response = _pix(api_client, CheckoutFactory())

    assert response.status_code == 503
    assert fake.posts == posts_before  # the breaker answered without calling the provider


def test_a_hanging_gateway_answers_within_the_request_budget_and_the_retry_adopts_its_charge(api_client, fake, settings, monkeypatch):
    # given: a JunglePay that creates the charge but then hangs (30 s) on every answer, and a 3 s budget
    settings.GATEWAY_REQUEST_BUDGET_SECONDS = 3
    monkeypatch.setattr("billing.gateways.junglepay.READ_TIMEOUT", 15)  # production's: the budget must be what stops it
    fake.create_delay = fake.get_delay = 30
    checkout = CheckoutFactory()

    # when: the buyer asks for the PIX
    started = time.monotonic()
    response = _pix(api_client, checkout)
    elapsed = time.monotonic() - started

    # then: a clear "try again" within the budget (plus the database work), never a worker held for the hang
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "gateway_unavailable"
    assert elapsed < settings.GATEWAY_REQUEST_BUDGET_SECONDS + 5, f"answered after {elapsed:.1f} s"
    assert checkout.charge_attempts.get().outcome == ChargeAttempt.Outcome.UNCONFIRMED

    # when: the gateway recovers and the buyer asks again
    fake.create_delay = fake.get_delay = 0
    retried = _pix(api_client, checkout)

    # then: the charge the hung create made is found and used: one charge at the gateway
    assert retried.status_code == 200, retried.json()
    assert len(fake.transactions) == 1 and fake.posts == 1
