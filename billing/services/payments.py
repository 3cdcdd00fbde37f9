"""
Applying what a gateway says about a charge: the fetched charge (JunglePay,
the sandbox, reconciliation) or a marketplace postback, through the
checkout and activation services. Callers store the event first
(billing.webhooks); nothing here talks to the network.
"""

from __future__ import annotations

import logging
import uuid

from billing.gateways import ChargeStatus
from billing.models import Checkout, CheckoutCharge, PaymentGateway, WebhookEvent
from billing.services.activation import activate_checkout, record_marketplace_payment
from billing.services.checkouts import fail_checkout, refund_checkout
from billing.services.review import record_partial_payment

logger = logging.getLogger(__name__)

Outcome = WebhookEvent.Outcome


class ProcessingError(Exception):
    """A stored event that could not be applied; kept FAILED with this message, for replay."""


def checkout_for_charge(config: PaymentGateway, charge) -> Checkout | None:
    """
    Our checkout for a gateway's charge: by `externalRef` (our uuid), else by
    transaction id, the current charge's or a replaced one's (CheckoutCharge:
    a PIX paid after a fresh one was issued is still this checkout's money).
    A checkout whose charge lives at another gateway is never matched: one
    gateway's notification cannot move another gateway's money.
    """
    qs = Checkout.objects.select_related("plan")
    found = None
    if charge.external_ref:
        try:
            found = qs.filter(public_id=uuid.UUID(charge.external_ref)).first()
        except ValueError:
            found = None
    if found is None:
        found = qs.filter(gateway=config, gateway_transaction_id=charge.transaction_id).first()
    if found is None:
        previous = CheckoutCharge.objects.filter(gateway=config, transaction_id=charge.transaction_id).first()
        found = qs.filter(pk=previous.checkout_id).first() if previous is not None else None
    if (
        found is not None
        and found.gateway_id not in (None, config.pk)
        and not CheckoutCharge.objects.filter(checkout=found, gateway=config, transaction_id=charge.transaction_id).exists()
    ):
        logger.warning("charge refers to a checkout of another gateway", extra={"gateway": config.kind, "transaction": charge.transaction_id})
        return None
    return found


def is_replaced_charge(checkout: Checkout, charge) -> bool:
    """The charge is an earlier one of this checkout, replaced by a fresh PIX (it may still be paid)."""
    return bool(checkout.gateway_transaction_id) and charge.transaction_id != checkout.gateway_transaction_id


def apply_charge(*, checkout: Checkout, charge, now) -> tuple[str, str]:
    """
    Move a checkout to what the gateway says, through the billing services
    (each locks the checkout and is idempotent). Never backwards: a
    `waiting_payment` never un-pays a paid checkout, a `paid` never revives a
    refunded one.
    """
    stale = charge.status in (ChargeStatus.PENDING, ChargeStatus.PARTIALLY_PAID) and checkout.status != Checkout.Status.PENDING
    if charge.provider_status and charge.provider_status != checkout.gateway_status and not stale and not is_replaced_charge(checkout, charge):
        # Informational (the state machine below is what counts); a stale "waiting" never overwrites.
        Checkout.objects.filter(pk=checkout.pk).update(gateway_status=charge.provider_status[:40])

    Status = Checkout.Status
    if charge.status == ChargeStatus.PAID:
        if checkout.status == Status.PAID:
            return Outcome.IGNORED, "already paid"
        if checkout.status == Status.REFUNDED:
            return Outcome.IGNORED, "checkout was refunded; a person must look at this payment"
        if charge.amount_cents is not None and charge.amount_cents != checkout.total_cents:
            raise ProcessingError(f"amount paid {charge.amount_cents} differs from the checkout total {checkout.total_cents}")
        # Money is never ignored: a payment after expiry or failure still activates (flagged late).
        activate_checkout(checkout=checkout, paid_at=charge.paid_at or now, now=now)
        return Outcome.PROCESSED, ""
    if charge.status == ChargeStatus.PENDING:
        return Outcome.IGNORED, f"status {charge.provider_status!r}: nothing to do"
    if charge.status == ChargeStatus.PARTIALLY_PAID:
        # Money arrived, but not all of it: recorded and put in front of a person, never access.
        record_partial_payment(checkout=checkout, charge=charge, now=now)
        return Outcome.PROCESSED, "partial payment: listed for a person"
    if charge.status in (ChargeStatus.FAILED, ChargeStatus.CANCELED, ChargeStatus.EXPIRED):
        if is_replaced_charge(checkout, charge):
            # The replaced QR ended; the checkout's fresh charge is still payable.
            return Outcome.IGNORED, f"status {charge.provider_status!r} of a replaced charge"
        if checkout.status != Status.PENDING:
            return Outcome.IGNORED, f"status {charge.provider_status!r} for a {checkout.status} checkout"
        target = {ChargeStatus.FAILED: Status.FAILED, ChargeStatus.CANCELED: Status.CANCELED, ChargeStatus.EXPIRED: Status.EXPIRED}
        fail_checkout(checkout=checkout, status=target[charge.status], now=now)
        return Outcome.PROCESSED, ""
    if charge.status == ChargeStatus.REFUNDED:
        if checkout.status != Status.PAID:
            return Outcome.IGNORED, f"status {charge.provider_status!r} for a {checkout.status} checkout"
        refund_checkout(checkout=checkout, now=now)
        return Outcome.PROCESSED, ""
    return Outcome.IGNORED, f"unknown status {charge.provider_status!r}"


def apply_marketplace_notification(notification, *, now) -> tuple[str, str]:
    """A marketplace postback is its own truth (no API to ask): applied as it says."""
    if notification.status not in (ChargeStatus.PENDING, ChargeStatus.PAID):
        return Outcome.IGNORED, f"unknown status {notification.provider_status!r}"
    if not notification.transaction_id or not notification.payer_email:
        # Nothing a retry could fix: kept for a person, not retried.
        return Outcome.IGNORED, "no transaction id or no payer e-mail in the body"
    subscription = record_marketplace_payment(
        external_id=notification.transaction_id,
        status=notification.status,
        amount_cents=notification.amount_cents,
        email=notification.payer_email,
        name=notification.payer_name,
        now=now,
    )
    if subscription is None:
        # Stored and answered 2xx; not retried (a retry cannot change the amount).
        return Outcome.IGNORED, f"amount {notification.amount_cents!r} matches no plan: listed for a person"
    return Outcome.PROCESSED, ""
