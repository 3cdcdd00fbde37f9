"""
Reconciliation: webhooks get lost, so once a day (and on an admin's click)
we list the gateway's charges of the last days and compare them with our
checkouts.

- Paid there, not paid here (the missed payment), or refunded there and
  still paid here (the missed refund: access must go): the missed-postback
  case. It goes through the very path of a webhook (a stored WebhookEvent,
  processed by fetching the charge), so the fix is recorded like any
  payment or refund, and listed as fixed.
- Any other difference (amount, status, a charge we do not know): listed as
  a ReconciliationItem for a person to look at; nothing is changed.

Running it twice changes nothing: events dedupe on (provider, event id),
items on (gateway, transaction, kind), and paid checkouts stay paid.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from billing import ledger
from billing.gateways import ChargeStatus, gateway_for
from billing.gateways.junglepay import ListingIncomplete
from billing.ledger_models import LedgerEntry
from billing.models import Checkout, PaymentGateway, ReconciliationItem
from billing.services import checkout_for_charge
from billing.services.review import (
    is_duplicate_payment,
    list_for_review,
    record_duplicate_payment,
    record_partial_payment,
)
from billing.webhooks import claim_event, process_event, store_event

logger = logging.getLogger(__name__)

RECONCILE_DAYS = 3
# What each of our statuses may legitimately be at the gateway.
_AGREES = {
    Checkout.Status.PENDING: {ChargeStatus.PENDING},
    Checkout.Status.PAID: {ChargeStatus.PAID},
    Checkout.Status.REFUNDED: {ChargeStatus.REFUNDED},
    Checkout.Status.FAILED: {ChargeStatus.FAILED, ChargeStatus.CANCELED, ChargeStatus.EXPIRED, ChargeStatus.PENDING},
    Checkout.Status.EXPIRED: {ChargeStatus.FAILED, ChargeStatus.CANCELED, ChargeStatus.EXPIRED, ChargeStatus.PENDING},
    Checkout.Status.CANCELED: {ChargeStatus.FAILED, ChargeStatus.CANCELED, ChargeStatus.EXPIRED, ChargeStatus.PENDING},
}

_Kind = ReconciliationItem.Kind
_MISSING_PAYMENT = (_Kind.MISSED_PAYMENT, Checkout.Status.PAID)
# (gateway says, we say) → (what the item is, our status once the postback is replayed)
_MISSED = {
    (ChargeStatus.PAID, Checkout.Status.PENDING): _MISSING_PAYMENT,
    (ChargeStatus.PAID, Checkout.Status.FAILED): _MISSING_PAYMENT,
    (ChargeStatus.PAID, Checkout.Status.EXPIRED): _MISSING_PAYMENT,
    (ChargeStatus.PAID, Checkout.Status.CANCELED): _MISSING_PAYMENT,
    (ChargeStatus.REFUNDED, Checkout.Status.PAID): (_Kind.MISSED_REFUND, Checkout.Status.REFUNDED),
}


@dataclass
class ReconciliationReport:
    gateway: str
    listed: int = 0
    matched: int = 0
    fixed: int = 0
    flagged: int = 0
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.gateway}: {self.listed} charges listed, {self.matched} agree, "
            f"{self.fixed} missed payments fixed, {self.flagged} differences listed"
            + (f", {len(self.errors)} errors" if self.errors else "")
        )


def _record(*, config, charge, checkout, kind, detail, now) -> bool:
    """
    A new item (True) or the one already listed (False): unique (gateway, transaction, kind).
    Money the gateway says was paid and that paid nothing here (an unknown transaction, an
    amount that is not the checkout's) goes into the ledger as listed, with the item.
    """
    with transaction.atomic():
        item, created = list_for_review(
            gateway=config, transaction_id=charge.transaction_id, checkout=checkout, kind=kind, detail=detail, now=now
        )
        if created and charge.status == ChargeStatus.PAID and kind in _UNPAID_MONEY:
            ledger.record_listed(
                cause=LedgerEntry.Cause.AMOUNT_MISMATCH, amount_cents=charge.amount_cents, gateway=config,
                transaction_id=charge.transaction_id, checkout=checkout, item=item, now=now,
            )
    return created


_UNPAID_MONEY = (ReconciliationItem.Kind.UNKNOWN_TRANSACTION, ReconciliationItem.Kind.AMOUNT_MISMATCH)


def _deliver_missed_postback(*, config, charge, now) -> str:
    """The missed postback, replayed through the webhook path: stored, then processed by fetching."""
    body = json.dumps(
        {
            "id": f"reconcile-{charge.transaction_id}-{charge.provider_status}",
            "type": "transaction",
            "objectId": charge.transaction_id,
            "data": charge.raw,
            "source": "reconciliation",
        }
    )
    event, created = store_event(
        provider=config.kind,
        event_id=f"reconcile:{charge.transaction_id}:{charge.provider_status}"[:128],
        headers={"x-source": "reconciliation"},
        body=body,
        payload=json.loads(body),
        now=now,
    )
    if not created and not claim_event(event, now=now, redelivery=True):
        return event.outcome
    return process_event(event=event, now=now)


def _listed(gateway, *, since, report: ReconciliationReport):
    """The gateway's charges; a listing cut short is reported as an error, never taken as complete."""
    try:
        yield from gateway.list_charges(since=since)
    except ListingIncomplete as exc:
        report.errors.append(f"listing incomplete: {exc}")


def reconcile_gateway(*, config: PaymentGateway, now=None, days: int = RECONCILE_DAYS) -> ReconciliationReport:
    now = now or timezone.now()
    report = ReconciliationReport(gateway=config.kind)
    gateway = gateway_for(config)
    for charge in _listed(gateway, since=now - timedelta(days=days), report=report):
        report.listed += 1
        checkout = checkout_for_charge(config, charge)
        detail = {"gateway_status": charge.provider_status, "gateway_amount": charge.amount_cents}
        if checkout is None:
            if _record(config=config, charge=charge, checkout=None, kind=ReconciliationItem.Kind.UNKNOWN_TRANSACTION, detail=detail, now=now):
                report.flagged += 1
            continue
        detail.update({"checkout_status": checkout.status, "checkout_total": checkout.total_cents})

        if charge.status == ChargeStatus.PARTIALLY_PAID:
            # Part of the money arrived: recorded and listed, exactly as the webhook path does.
            _item, created = record_partial_payment(checkout=checkout, charge=charge, now=now)
            report.flagged += created
            continue

        if charge.status == ChargeStatus.PAID and is_duplicate_payment(checkout, transaction_id=charge.transaction_id):
            # Another of the checkout's QRs paid it: this money is listed to be refunded, as the webhook path does.
            _item, created = record_duplicate_payment(
                checkout=checkout, transaction_id=charge.transaction_id, amount_cents=charge.amount_cents, now=now
            )
            report.flagged += created
            continue

        if charge.amount_cents is not None and charge.amount_cents != checkout.total_cents:
            if _record(config=config, charge=charge, checkout=checkout, kind=ReconciliationItem.Kind.AMOUNT_MISMATCH, detail=detail, now=now):
                report.flagged += 1
            continue  # never activate on an amount that does not match

        missed = _MISSED.get((charge.status, checkout.status))
        if missed is not None:
            kind, expected = missed
            outcome = _deliver_missed_postback(config=config, charge=charge, now=now)
            checkout.refresh_from_db(fields=["status"])
            if checkout.status == expected:
                detail["checkout_status_after"] = checkout.status
                _record(config=config, charge=charge, checkout=checkout, kind=kind, detail=detail, now=now)
                report.fixed += 1
            else:
                report.errors.append(f"{charge.transaction_id}: {outcome}")
            continue

        if charge.status in _AGREES.get(checkout.status, set()):
            report.matched += 1
            continue
        if _record(config=config, charge=charge, checkout=checkout, kind=ReconciliationItem.Kind.STATUS_MISMATCH, detail=detail, now=now):
            report.flagged += 1
    logger.info("reconciliation finished", extra={"summary": report.summary()})
    return report


def reconcile_payments(*, now=None, days: int = RECONCILE_DAYS) -> list[ReconciliationReport]:
    """Every gateway with an API that has issued charges (Dias has none to ask)."""
    now = now or timezone.now()
    reports = []
    for config in PaymentGateway.objects.filter(kind__in=PaymentGateway.INTERNAL_KINDS).order_by("kind"):
        if not (config.is_active or Checkout.objects.filter(gateway=config, created_at__gte=now - timedelta(days=days)).exists()):
            continue
        if config.kind == PaymentGateway.Kind.JUNGLEPAY and not config.effective_secret_key:
            continue
        reports.append(reconcile_gateway(config=config, now=now, days=days))
    return reports
