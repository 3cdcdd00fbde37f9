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
from datetime import datetime, timedelta
from typing import Iterable

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from billing.exceptions import GatewayRejected
from billing.gateways.base import Charge, ChargeRequest, Gateway, Notification, RefundResult
from billing.gateways.junglepay import charge_from_transaction, parse_transaction_postback
from billing.pix import build_br_code

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


def sandbox_allowed() -> bool:
    return bool(settings.DEBUG or settings.SANDBOX_GATEWAY_ALLOWED)


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

    def _checkouts(self):
        from billing.models import Checkout

        return Checkout.objects.filter(gateway__kind=self.kind).exclude(gateway_transaction_id="")

    def find_charge(self, *, external_ref: str, skip_transaction_ids=()) -> Charge | None:
        checkout = self._checkouts().filter(public_id=external_ref).exclude(gateway_transaction_id__in=list(skip_transaction_ids)).first()
        if checkout is None or not checkout.gateway_response:
            return None
        return charge_from_transaction(checkout.gateway_response)

    def fetch_charge(self, transaction_id: str) -> Charge:
        checkout = self._checkouts().filter(gateway_transaction_id=transaction_id).first()
        if checkout is None or not checkout.gateway_response:
            raise GatewayRejected(f"sandbox transaction {transaction_id} not found")
        return charge_from_transaction(checkout.gateway_response)

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
