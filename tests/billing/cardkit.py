"""Card payments in tests: the fake JunglePay taking cards, and the test tokenizer's hashes (billing.cards)."""

import pytest

from billing.cards import make_test_card_hash
from billing.models import Checkout, PaymentGateway
from tests.factories import CheckoutFactory, PlanFactory
from tests.fakes.junglepay import FakeJunglePay

APPROVED = make_test_card_hash(last_digits="4242", brand="visa", exp_month=12, exp_year=2030)
APPROVED_NOT_REUSABLE = make_test_card_hash(last_digits="0010", brand="mastercard")
REFUSED_NO_FUNDS = make_test_card_hash(last_digits="0002")
REFUSED_UNKNOWN_CODE = make_test_card_hash(last_digits="0127")
PROCESSING = make_test_card_hash(last_digits="0119")


@pytest.fixture
def card_junglepay(settings, monkeypatch, db):
    """JunglePay (a real local HTTP fake) as the active gateway, taking cards."""
    with FakeJunglePay() as server:
        settings.JUNGLEPAY_API_URL = server.url
        settings.JUNGLEPAY_JS_URL = server.url + "/js"
        monkeypatch.setattr("billing.gateways.junglepay.READ_TIMEOUT", 0.5)
        PaymentGateway.objects.filter(is_active=True).update(is_active=False)
        PaymentGateway.objects.update_or_create(
            kind="junglepay", defaults={"secret_key": "sk_test_cards", "public_key": "pk_test_cards", "is_active": True}
        )
        yield server


def card_checkout(**fields) -> Checkout:
    """A NEW pending checkout of a plan taking card in up to 3 installments (R$ 239,90)."""
    plan = fields.pop("plan", None) or PlanFactory(price_cents=23990, duration_days=365, accepts_card=True, max_installments=3)
    return CheckoutFactory(plan=plan, **fields)
