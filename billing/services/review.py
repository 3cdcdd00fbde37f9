"""
Money a person must look at: a ReconciliationItem per (gateway, transaction,
kind), written by the webhook path and by reconciliation alike. Listing an
item never grants access; it only makes money that arrived visible.
"""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction

from billing.models import Checkout, PaymentGateway, ReconciliationItem
from billing.services.locks import lock_checkout


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
    return list_for_review(
        gateway=checkout.gateway,
        transaction_id=charge.transaction_id,
        kind=ReconciliationItem.Kind.PARTIAL_PAYMENT,
        checkout=checkout,
        detail=detail,
        amount_cents=charge.paid_amount_cents,
        now=now,
    )
