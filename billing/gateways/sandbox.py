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

import secrets
from datetime import datetime, timedelta
from typing import Iterable

from django.conf import settings
from django.utils import timezone

from billing.exceptions import GatewayRejected
from billing.gateways.base import Charge, ChargeRequest, Gateway, Notification
from billing.gateways.junglepay import charge_from_transaction, parse_transaction_postback
from billing.pix import build_br_code

# A random EVP-shaped key that belongs to nobody: banking apps read the code, no bank pays it.
SANDBOX_PIX_KEY = "00000000-0000-4000-8000-5a4db0c0ffee"
SANDBOX_OUTCOMES = {"paid": "paid", "refused": "refused", "expired": "expired", "refunded": "refunded"}


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
