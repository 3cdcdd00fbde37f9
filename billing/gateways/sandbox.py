"""
The built-in sandbox gateway: the default of `make run` and of the tests.

It issues real, scannable BR Codes around a fake PIX key, and keeps "its
side" of each charge in the checkout's `gateway_response` (the database, so
every worker sees the same thing). The checkout page's simulate buttons
change that state and deliver a postback shaped like JunglePay's through the
same webhook path a real provider uses; the webhook then fetches the charge
from here, exactly as it fetches from JunglePay.

It refuses to serve when DEBUG is off unless SANDBOX_GATEWAY_ALLOWED is set
(and the system check billing.E001 says so at start-up).
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db import transaction
from django.templatetags.static import static
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.cards import read_test_card_hash, test_card_transaction
from billing.exceptions import GatewayRejected, PaymentDetailsRefused
from billing.gateways.base import CardChargeRequest, Charge, ChargeRequest, Gateway, Notification, RefundResult
from billing.gateways.junglepay import charge_from_transaction, parse_transaction_postback
from billing.models import CardAttempt, Checkout
from billing.pix import build_br_code
from config.sandbox import sandbox_allowed  # noqa: F401 - re-exported: billing's callers import it from here

# A random EVP-shaped key that belongs to nobody: banking apps read the code, no bank pays it.
SANDBOX_PIX_KEY = "00000000-0000-4000-8000-5a4db0c0ffee"
SANDBOX_OUTCOMES = {"paid": "paid", "refused": "refused", "expired": "expired", "refunded": "refunded"}


def sandbox_postback(transaction_data: dict, *, transaction_id: str) -> bytes:
    """The postback the sandbox sends for its transaction, shaped like JunglePay's."""
    postback = {
        "id": f"sbx-{uuid.uuid4().hex}",
        "type": "transaction",
        "objectId": str(transaction_id),
        "url": "",
        "data": transaction_data,
    }
    return json.dumps(postback).encode()


class SandboxGateway(Gateway):
    kind = "sandbox"

    def create_charge(self, request: ChargeRequest) -> Charge:
        now = timezone.now()
        transaction_id = "sbx_" + secrets.token_hex(8)
        code = build_br_code(
            key=SANDBOX_PIX_KEY,
            amount_cents=request.amount_cents,
            merchant_name="CreatorFlix Sandbox",
            merchant_city="Sao Paulo",
            txid=transaction_id,
        )
        transaction = {
            "id": transaction_id,
            "status": "waiting_payment",
            "amount": request.amount_cents,
            "externalRef": request.external_ref,
            "createdAt": now.isoformat(),
            "paidAt": None,
            "customer": {"email": request.customer.email},
            "items": [{"title": i.title, "unitPrice": i.unit_price_cents, "quantity": i.quantity} for i in request.items],
            "pix": {
                "qrcode": code,
                "url": "",
                "expirationDate": (timezone.localdate(now) + timedelta(days=request.expires_in_days)).isoformat(),
            },
            "sandbox": True,
        }
        return charge_from_transaction(transaction)

    def create_card_charge(self, request: CardChargeRequest) -> Charge:
        """
        A card charge decided by the test card's last digits (billing.cards.TEST_CARDS):
        approved, refused with a reason, or processing (the checkout page's simulate
        buttons then deliver its postback). A saved card (`card: {id}`) is charged
        by the same rule, its id carrying its last digits.
        """
        if request.card_id:
            parts = request.card_id.split("_")
            card = {"lastDigits": parts[2] if len(parts) > 2 else "", "brand": parts[3] if len(parts) > 3 else "visa"}
            card_id = request.card_id
        else:
            card = read_test_card_hash(request.card_hash)
            if card is None:
                raise PaymentDetailsRefused(_("The sandbox takes only its test cards (see the checkout page)."))
            card_id = f"sbx_card_{str(card.get('lastDigits'))[-4:]}_{card.get('brand') or 'visa'}_{secrets.token_hex(4)}"
        transaction_id = "sbx_" + secrets.token_hex(8)
        transaction_data = test_card_transaction(
            card=card, transaction_id=transaction_id, card_id=card_id, amount_cents=request.amount_cents, installments=request.installments
        )
        now = timezone.now()
        transaction_data.update(
            externalRef=request.external_ref,
            createdAt=now.isoformat(),
            paidAt=now.isoformat() if transaction_data["status"] == "paid" else None,
            customer={"email": request.customer.email},
            sandbox=True,
        )
        # The sandbox's side of the charge lives on our attempt row (the database: every worker sees it).
        CardAttempt.objects.filter(
            gateway__kind=self.kind, external_ref=request.external_ref, status=CardAttempt.Status.IN_FLIGHT
        ).update(gateway_response=transaction_data)
        return charge_from_transaction(transaction_data)

    def _card_attempts(self):
        return CardAttempt.objects.filter(gateway__kind=self.kind, gateway_response__isnull=False)

    def _checkouts(self):
        return Checkout.objects.filter(gateway__kind=self.kind).exclude(gateway_transaction_id="")

    def find_charge(self, *, external_ref: str, skip_transaction_ids=()) -> Charge | None:
        skip = {str(t) for t in skip_transaction_ids}
        checkout = self._checkouts().filter(public_id=external_ref).exclude(gateway_transaction_id__in=list(skip)).first()
        if checkout is not None and checkout.gateway_response:
            return charge_from_transaction(checkout.gateway_response)
        for attempt in self._card_attempts().filter(external_ref=external_ref).order_by("-created_at"):
            charge = charge_from_transaction(attempt.gateway_response)
            if charge.transaction_id not in skip:
                return charge
        return None

    def fetch_charge(self, transaction_id: str) -> Charge:
        checkout = self._checkouts().filter(gateway_transaction_id=transaction_id).first()
        if checkout is not None and checkout.gateway_response:
            return charge_from_transaction(checkout.gateway_response)
        for attempt in self._card_attempts().filter(transaction_id=transaction_id):
            return charge_from_transaction(attempt.gateway_response)
        raise GatewayRejected(f"sandbox transaction {transaction_id} not found")

    def tokenizer_url(self) -> str:
        """The test tokenizer, served by the site itself: `make run` takes cards without JunglePay."""
        return static("js/junglepay-test-tokenizer.js")

    def list_charges(self, *, since: datetime) -> Iterable[Charge]:
        for checkout in self._checkouts().filter(created_at__gte=since).iterator():
            if checkout.gateway_response:
                yield charge_from_transaction(checkout.gateway_response)

    def parse_notification(self, body: bytes) -> Notification:
        return parse_transaction_postback(body)

    def refund(self, transaction_id: str, amount_cents: int) -> RefundResult:
        """Refunds at once (in full only, like PIX refunds here) and returns its `refunded` postback."""
        with transaction.atomic():
            # Only the sandbox's side of the charge changes here; our records change when the postback is applied.
            checkout = self._checkouts().select_for_update().filter(gateway_transaction_id=transaction_id).first()
            if checkout is None or not checkout.gateway_response:
                raise GatewayRejected(f"sandbox transaction {transaction_id} not found")
            data = dict(checkout.gateway_response)
            if data.get("status") not in ("paid", "refunded"):
                raise GatewayRejected(f"sandbox transaction {transaction_id} is {data.get('status')!r}, not paid")
            if data.get("amount") != amount_cents:
                raise GatewayRejected(f"sandbox refunds in full only: {amount_cents} of {data.get('amount')}")
            data["status"] = "refunded"
            data["refundedAt"] = timezone.now().isoformat()
            checkout.gateway_response = data
            checkout.save(update_fields=["gateway_response", "updated_at"])
        return RefundResult(transaction_id=transaction_id, postback=sandbox_postback(data, transaction_id=transaction_id))
