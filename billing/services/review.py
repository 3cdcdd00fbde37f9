"""
Money a person must look at: a ReconciliationItem per (gateway, transaction,
kind), written by the webhook path and by reconciliation alike. Listing an
item never grants access; it only makes money that arrived visible.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import IntegrityError, transaction

from billing import ledger
from billing.ledger_models import LedgerEntry
from billing.models import Checkout, CheckoutCharge, PaymentGateway, ReconciliationItem
from billing.services.locks import lock_checkout

logger = logging.getLogger(__name__)


def list_for_review(
    *,
    gateway: PaymentGateway,
    transaction_id: str,
    kind: str,
    detail: dict,
    now: datetime,
    checkout: Checkout | None = None,
    amount_cents: int | None = None,
    reopen: bool = False,
) -> tuple[ReconciliationItem, bool]:
    """
    The item for a person, and whether this call created it. Listed once: the
    unique (gateway, transaction, kind) constraint dedupes concurrent callers.
    A second sighting refreshes what it says; `reopen` puts a resolved item
    back in front of a person (new money arrived on it).
    """
    try:
        with transaction.atomic():
            item = ReconciliationItem.objects.create(
                gateway=gateway, transaction_id=transaction_id[:100], kind=kind, checkout=checkout,
                detail=detail, amount_cents=amount_cents, found_at=now,
            )
        return item, True
    except IntegrityError:
        item = ReconciliationItem.objects.select_for_update().get(gateway=gateway, transaction_id=transaction_id[:100], kind=kind)
        item.detail = detail
        if amount_cents is not None:
            item.amount_cents = amount_cents
        if reopen:
            item.resolved = False
        item.save(update_fields=["detail", "amount_cents", "resolved"])
        return item, False


@transaction.atomic
def record_partial_payment(*, checkout: Checkout, charge, now: datetime) -> tuple[ReconciliationItem, bool]:
    """
    A `partially_paid` charge: part of the money arrived. What arrived is kept
    on the checkout (`paid_amount_cents`, when the gateway says) and the
    payment is listed for a person; the checkout stays unpaid and no access is
    given. Idempotent: one item per transaction.
    """
    checkout = lock_checkout(checkout).checkout  # the one lock order; a charge exists, so its checkout names its gateway
    if checkout.status not in (Checkout.Status.PAID, Checkout.Status.REFUNDED) and charge.paid_amount_cents is not None:
        checkout.paid_amount_cents = charge.paid_amount_cents
        checkout.save(update_fields=["paid_amount_cents", "updated_at"])
    detail = {
        "gateway_status": charge.provider_status,
        "gateway_amount": charge.amount_cents,
        "paid_amount": charge.paid_amount_cents,
        "checkout_status": checkout.status,
        "checkout_total": checkout.total_cents,
    }
    item, created = list_for_review(
        gateway=checkout.gateway,
        transaction_id=charge.transaction_id,
        kind=ReconciliationItem.Kind.PARTIAL_PAYMENT,
        checkout=checkout,
        detail=detail,
        amount_cents=charge.paid_amount_cents,
        now=now,
    )
    if created:
        ledger.record_listed(
            cause=LedgerEntry.Cause.PARTIAL, amount_cents=charge.paid_amount_cents, transaction_id=charge.transaction_id,
            checkout=checkout, item=item, now=now,
        )
    return item, created


def is_duplicate_payment(checkout: Checkout, *, transaction_id: str) -> bool:
    """
    A payment of `transaction_id` for a checkout another of its transactions
    already paid (both PIX QRs of one checkout paid: the replaced one and the
    fresh one). Paying it again is never a second period; the money is listed
    to be refunded. The same transaction again is a plain re-delivery. A
    checkout paid before the paying transaction was recorded (blank) is never
    taken for a duplicate.
    """
    return (
        checkout.status in (Checkout.Status.PAID, Checkout.Status.REFUNDED)
        and bool(checkout.paid_transaction_id)
        and bool(transaction_id)
        and transaction_id != checkout.paid_transaction_id
    )


@transaction.atomic
def record_duplicate_payment(*, checkout: Checkout, transaction_id: str, amount_cents: int | None, now: datetime):
    """The second payment of a checkout: kept and listed (`duplicate_payment`) for a person to refund; no access."""
    gateway = checkout.gateway
    if transaction_id != checkout.gateway_transaction_id:
        # A replaced charge may have lived at another gateway (the sandbox before the switch).
        previous = CheckoutCharge.objects.select_related("gateway").filter(checkout=checkout, transaction_id=transaction_id).first()
        gateway = previous.gateway if previous is not None else gateway
    logger.warning(
        "a checkout paid twice: the second payment is listed to be refunded",
        extra={"checkout": str(checkout.public_id), "transaction": transaction_id, "paid_by": checkout.paid_transaction_id},
    )
    item, created = list_for_review(
        gateway=gateway,
        transaction_id=transaction_id,
        kind=ReconciliationItem.Kind.DUPLICATE_PAYMENT,
        checkout=checkout,
        detail={
            "paid_by": checkout.paid_transaction_id,
            "checkout_status": checkout.status,
            "checkout_total": checkout.total_cents,
            "purpose": checkout.purpose,
        },
        amount_cents=amount_cents,
        now=now,
    )
    if created:
        ledger.record_listed(
            cause=LedgerEntry.Cause.DUPLICATE, amount_cents=amount_cents, gateway=gateway, transaction_id=transaction_id,
            checkout=checkout, item=item, now=now,
        )
    return item, created
