"""
Card facts shared by the gateways, the services and the pages: the bank's
refusal reasons in the buyer's language, the installment options of a
price, and the test cards of the sandbox (and of the tests' fake JunglePay).

No card number is ever handled here: the browser turns it into a hash with
the gateway's tokenizer; the test hash below carries only what a gateway
returns anyway (brand, last digits, expiry, holder).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import TYPE_CHECKING

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

if TYPE_CHECKING:  # annotations only: billing.gateways imports this module (its sandbox takes test cards)
    from billing.gateways.base import Refusal

# Refusal codes we know (the acquirers' ABECS codes and the names gateways use for them) → our words.
_REFUSALS = {
    "insufficient_funds": gettext_lazy("Insufficient funds. Try another card or pay by PIX."),
    "expired_card": gettext_lazy("This card has expired. Try another card or pay by PIX."),
    "invalid_cvv": gettext_lazy("The security code (CVV) is wrong. Check it and try again."),
    "invalid_card": gettext_lazy("The card number is invalid. Check it and try again."),
    "not_authorized": gettext_lazy("The card's bank did not authorize the payment. Contact your bank, try another card or pay by PIX."),
    "fraud_suspected": gettext_lazy("The payment was declined by the security check. Try another card or pay by PIX."),
    "limit_exceeded": gettext_lazy("The card's limit is not enough for this amount. Try another card or pay by PIX."),
}
_CODE_ALIASES = {
    "51": "insufficient_funds",
    "54": "expired_card",
    "n7": "invalid_cvv",
    "82": "invalid_cvv",
    "14": "invalid_card",
    "05": "not_authorized",
    "57": "not_authorized",
    "1000": "not_authorized",
    "59": "fraud_suspected",
    "antifraud": "fraud_suspected",
    "61": "limit_exceeded",
    "65": "limit_exceeded",
}


def refusal_key(refusal: Refusal | None) -> str:
    """Our name for a refusal's code ("" when we do not know it)."""
    code = (refusal.code if refusal else "").strip().lower()
    return code if code in _REFUSALS else _CODE_ALIASES.get(code, "")


def refusal_message(refusal: Refusal | None) -> str:
    """What the buyer reads: our words where we know the code, else the gateway's own, else a plain 'refused'."""
    key = refusal_key(refusal)
    if key:
        return str(_REFUSALS[key])
    if refusal is not None and refusal.message:
        return refusal.message
    return _("The card was refused. Try another card or pay by PIX.")


# --- the sandbox's test cards --------------------------------------------------------------
# The sandbox (and the tests' fake JunglePay) decide a card charge by its last digits, like the
# test cards of real gateways. static/js/junglepay-test-tokenizer.js makes the hashes.
TEST_HASH_PREFIX = "test_"
TEST_CARDS = {
    "4242": {"outcome": "paid", "reusable": True},
    "1111": {"outcome": "paid", "reusable": True},
    "0010": {"outcome": "paid", "reusable": False},
    "0002": {"outcome": "refused", "code": "51", "message": "Saldo insuficiente"},
    "0069": {"outcome": "refused", "code": "54", "message": "Cartão vencido"},
    "0127": {"outcome": "refused", "code": "unknown_reason", "message": "Transação não permitida pelo emissor"},
    "0119": {"outcome": "processing", "reusable": True},
}


def read_test_card_hash(card_hash: str) -> dict | None:
    """The test tokenizer's hash → {brand, lastDigits, expMonth, expYear, holderName}; None when it is not one."""
    if not card_hash.startswith(TEST_HASH_PREFIX):
        return None
    raw = card_hash[len(TEST_HASH_PREFIX):]
    try:
        data = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (ValueError, binascii.Error):
        return None
    return data if isinstance(data, dict) else None


def make_test_card_hash(*, last_digits: str, brand: str = "visa", exp_month: int = 12, exp_year: int = 2030, holder: str = "ANA SOUZA") -> str:
    """What the test tokenizer returns for a card (used by tests that skip the browser)."""
    data = {"brand": brand, "lastDigits": last_digits, "expMonth": exp_month, "expYear": exp_year, "holderName": holder}
    return TEST_HASH_PREFIX + base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def test_card_transaction(*, card: dict, transaction_id, card_id: str, amount_cents: int, installments: int) -> dict:
    """The transaction a test gateway answers for a test card: paid, processing or refused, like JunglePay's."""
    last = str(card.get("lastDigits") or "")[-4:]
    rule = TEST_CARDS.get(last, {"outcome": "paid", "reusable": True})
    transaction = {
        "id": transaction_id,
        "status": rule["outcome"],
        "amount": amount_cents,
        "paymentMethod": "credit_card",
        "installments": installments,
        "card": {
            "id": card_id,
            "brand": card.get("brand") or "visa",
            "holderName": card.get("holderName") or "",
            "lastDigits": last,
            "expirationMonth": card.get("expMonth"),
            "expirationYear": card.get("expYear"),
            "reusable": bool(rule.get("reusable")),
        },
    }
    if rule["outcome"] == "refused":
        transaction["refusedReason"] = {"code": rule["code"], "message": rule["message"]}
    return transaction
