"""
Dias Marketplace: an external checkout (the plan's `checkout_url`). We never
charge through it and it has no API to ask; its postback is the only record:

    {"id": "...", "externalRef": "...", "status": "PENDING" | "PAID", "amount": 2990,
     "payer": {"email": "...", "name": "..."}}

The transaction id is `externalRef`, falling back to `id`.
"""

from __future__ import annotations

import hashlib

from billing.gateways.base import ChargeStatus, Gateway, Notification, json_object

STATUS_MAP = {"PENDING": ChargeStatus.PENDING, "PAID": ChargeStatus.PAID}


class DiasGateway(Gateway):
    kind = "dias"

    def parse_notification(self, body: bytes) -> Notification:
        payload = json_object(body)
        transaction_id = str(payload.get("externalRef") or payload.get("id") or "").strip()
        provider_status = str(payload.get("status") or "").strip()
        payer = payload.get("payer") if isinstance(payload.get("payer"), dict) else {}
        try:
            amount = int(payload["amount"]) if payload.get("amount") not in (None, "") else None
        except (TypeError, ValueError):
            amount = None
        if transaction_id:
            # One event per transaction and status: a re-delivery of PAID is the same event.
            event_id = f"{transaction_id}:{provider_status.upper()}"
        else:
            event_id = "sha256:" + hashlib.sha256(body).hexdigest()
        return Notification(
            event_id=event_id[:128],
            kind="transaction",
            transaction_id=transaction_id,
            external_ref=transaction_id,
            provider_status=provider_status,
            status=STATUS_MAP.get(provider_status.upper(), ChargeStatus.UNKNOWN),
            amount_cents=amount,
            payer_email=str(payer.get("email") or "").strip(),
            payer_name=str(payer.get("name") or "").strip(),
            payload=payload,
        )
