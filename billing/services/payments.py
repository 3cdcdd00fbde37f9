"""
Applying what a gateway says about a charge: the fetched charge (JunglePay,
the sandbox, reconciliation) or a marketplace postback, through the
checkout and activation services. Callers store the event first
(billing.webhooks); nothing here talks to the network.
"""

from __future__ import annotations

import logging
import uuid

from django.db.models import Q

from billing.exceptions import TransitionNotAllowed
from billing.gateways import ChargeStatus
from billing.models import CardAttempt, Checkout, CheckoutCharge, PaymentGateway, WebhookEvent
from billing.services.activation import activate_checkout
from billing.services.card_attempts import card_attempt_for_charge, record_card_answer
from billing.services.charges import CHARGE_FIELDS
from billing.services.checkouts import fail_checkout, refund_checkout, restore_disputed_checkout
from billing.services.locks import lock_checkout
from billing.services.marketplace import record_marketplace_payment
from billing.services.review import (
    close_duplicate_payment,
    is_duplicate_payment,
    is_other_transaction,
    record_duplicate_payment,
    record_partial_payment,
)

logger = logging.getLogger(__name__)

DUPLICATE_NOTE = "paid by another transaction already: duplicate payment listed for a person (refund)"

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
        # A card charge of ours whose externalRef is its own (an automatic renewal's attempt).
        attempt = CardAttempt.objects.filter(
            Q(transaction_id=charge.transaction_id) | Q(transaction_id="", external_ref=charge.external_ref or "-"), gateway=config
        ).first()
        found = qs.filter(pk=attempt.checkout_id).first() if attempt is not None else None
    if found is None:
        found = qs.filter(gateway=config, gateway_transaction_id=charge.transaction_id).first()
    if found is None:
        previous = CheckoutCharge.objects.filter(gateway=config, transaction_id=charge.transaction_id).first()
        found = qs.filter(pk=previous.checkout_id).first() if previous is not None else None
    if (
        found is not None
        and found.gateway_id not in (None, config.pk)
        and not CheckoutCharge.objects.filter(checkout=found, gateway=config, transaction_id=charge.transaction_id).exists()
        and not CardAttempt.objects.filter(checkout=found, gateway=config).exists()
    ):
        logger.warning("charge refers to a checkout of another gateway", extra={"gateway": config.kind, "transaction": charge.transaction_id})
        return None
    return found


def is_replaced_charge(checkout: Checkout, charge) -> bool:
    """The charge is an earlier one of this checkout, replaced by a fresh PIX (it may still be paid)."""
    return bool(checkout.gateway_transaction_id) and charge.transaction_id != checkout.gateway_transaction_id


def apply_charge(*, checkout: Checkout, charge, now) -> tuple[str, str]:
    """
    Move a checkout to what the gateway says, through the billing services.
    Every decision is taken under the services' locks, on the checkout as it
    is then, never on the unlocked read the caller made. Never backwards: a
    `waiting_payment` never un-pays a paid checkout, a `paid` never revives a
    refunded one (except a PIX dispute decided for us: restored).

    A payment of a checkout another of its transactions already paid (both
    QRs of one checkout paid) is kept and listed (`duplicate_payment`), never
    a second period; the same transaction again is a plain "already paid".

    Raises ProcessingError (the event stays FAILED and is retried) for what
    cannot apply yet or must not apply as is: a refund of a checkout not paid
    here yet (its payment may still be on its way), a payment without an
    amount or with another amount than the checkout's total.
    """
    Status = Checkout.Status
    attempt = card_attempt_for_charge(checkout, charge)
    if attempt is not None:
        return _apply_card_charge(checkout=checkout, attempt=attempt, charge=charge, now=now)
    if charge.status == ChargeStatus.PAID:
        return _apply_payment(checkout=checkout, charge=charge, now=now)
    if charge.status == ChargeStatus.PENDING:
        if checkout.status == Status.PENDING:
            _noted(checkout, charge, Outcome.IGNORED, "")  # a stale "waiting" never overwrites a later status
        return Outcome.IGNORED, f"status {charge.provider_status!r}: nothing to do"
    if charge.status == ChargeStatus.PARTIALLY_PAID:
        # Money arrived, but not all of it: recorded and put in front of a person, never access.
        record_partial_payment(checkout=checkout, charge=charge, now=now)
        if checkout.status == Status.PENDING:
            _noted(checkout, charge, Outcome.PROCESSED, "")
        return Outcome.PROCESSED, "partial payment: listed for a person"
    if charge.status in (ChargeStatus.FAILED, ChargeStatus.CANCELED, ChargeStatus.EXPIRED):
        if is_replaced_charge(checkout, charge):
            # The replaced QR ended; the checkout's fresh charge is still payable.
            return Outcome.IGNORED, f"status {charge.provider_status!r} of a replaced charge"
        target = {ChargeStatus.FAILED: Status.FAILED, ChargeStatus.CANCELED: Status.CANCELED, ChargeStatus.EXPIRED: Status.EXPIRED}
        before = checkout.status
        checkout = fail_checkout(checkout=checkout, status=target[charge.status], now=now)  # moves only a pending one
        if before == checkout.status or checkout.status != target[charge.status]:
            return Outcome.IGNORED, f"status {charge.provider_status!r} for a {checkout.status} checkout"
        return _noted(checkout, charge, Outcome.PROCESSED, "")
    if charge.status == ChargeStatus.REFUNDED:
        if is_other_transaction(checkout, transaction_id=charge.transaction_id):
            # Every charge of a checkout shares its externalRef: a refund revokes only what the refunded
            # transaction paid for. A duplicate payment given back just closes its review item.
            if close_duplicate_payment(
                checkout=checkout, transaction_id=charge.transaction_id, provider_status=charge.provider_status, now=now
            ):
                return Outcome.PROCESSED, "duplicate payment given back: its review item is closed"
            return Outcome.IGNORED, f"status {charge.provider_status!r} of a transaction that did not pay this checkout"
        _refund_for_charge(checkout=checkout, charge=charge, now=now)
        return Outcome.PROCESSED, ""
    return Outcome.IGNORED, f"unknown status {charge.provider_status!r}"


def _refund_for_charge(*, checkout: Checkout, charge, now) -> None:
    """
    The money went back (a refund, a chargeback, a PIX dispute): the provider's status is
    recorded first, since it is what tells refund_checkout a chargeback from a refund (the
    ledger's kind, `payment.chargedback` or `.refunded`) and lets a dispute decided for us restore.
    """
    Checkout.objects.filter(pk=checkout.pk).update(gateway_status=charge.provider_status[:40])
    checkout.gateway_status = charge.provider_status[:40]
    try:
        refund_checkout(checkout=checkout, now=now)
    except TransitionNotAllowed as exc:
        # Not paid here (yet): the payment may be on its way; retried, never dropped (the update rolls back with it).
        raise ProcessingError(f"refund for a checkout not paid here yet; retried: {exc}") from exc




def _apply_payment(*, checkout: Checkout, charge, now) -> tuple[str, str]:
    """A paid charge (PIX or card) of `checkout`: activated once, a second transaction listed as a duplicate."""
    Status = Checkout.Status
    # Which transaction paid a checkout never changes once recorded: safe to read unlocked.
    if is_duplicate_payment(checkout, transaction_id=charge.transaction_id):
        record_duplicate_payment(checkout=checkout, transaction_id=charge.transaction_id, amount_cents=charge.amount_cents, now=now)
        return Outcome.PROCESSED, DUPLICATE_NOTE
    if checkout.status == Status.PAID:
        return Outcome.IGNORED, "already paid"  # a paid checkout only ever moves to refunded: safe unlocked
    if charge.amount_cents is None:
        raise ProcessingError("the gateway's charge has no amount; not activated")
    if charge.amount_cents != checkout.total_cents:
        raise ProcessingError(f"amount paid {charge.amount_cents} differs from the checkout total {checkout.total_cents}")
    try:
        # Money is never ignored: a payment after expiry or failure still activates (flagged late).
        activate_checkout(checkout=checkout, paid_at=charge.paid_at or now, now=now, transaction_id=charge.transaction_id)
    except TransitionNotAllowed:
        restored = restore_disputed_checkout(checkout=checkout, now=now)
        if restored.status != Status.PAID:
            return _noted(checkout, charge, Outcome.IGNORED, "checkout was refunded; a person must look at this payment")
        return _noted(checkout, charge, Outcome.PROCESSED, "dispute reversed: payment restored")
    # Another of its QRs paying it meanwhile (while this one waited for the lock) is seen by
    # activate_checkout under the lock: listed there as a duplicate, not applied.
    return _noted(checkout, charge, Outcome.PROCESSED, "")


def _apply_card_charge(*, checkout: Checkout, attempt: CardAttempt, charge, now) -> tuple[str, str]:
    """
    A card charge's status, on its attempt and on the checkout. Unlike a PIX
    charge, a refused card never fails the checkout: the buyer tries another
    card or PIX on the same checkout. A processing charge waits (the checkout
    stays pending, its page listening); paid activates like any payment; a
    refund or chargeback of the card that paid revokes like a PIX refund.
    """
    Status = Checkout.Status
    if charge.status in (ChargeStatus.PAID, ChargeStatus.PENDING) and checkout.status == Status.PENDING:
        adopt_card_transaction(checkout=checkout, charge=charge)
    if charge.status == ChargeStatus.PAID:
        outcome, note = _apply_payment(checkout=checkout, charge=charge, now=now)
        record_card_answer(attempt=attempt, charge=charge, now=now)
        return outcome, note
    if charge.status == ChargeStatus.REFUNDED:
        record_card_answer(attempt=attempt, charge=charge, now=now)
        paid_by_it = checkout.paid_transaction_id == charge.transaction_id or (
            not checkout.paid_transaction_id and checkout.gateway_transaction_id == charge.transaction_id
        )
        if checkout.status in (Status.PAID, Status.REFUNDED) and not paid_by_it:
            return Outcome.IGNORED, f"card transaction {charge.transaction_id} did not pay this checkout"
        _refund_for_charge(checkout=checkout, charge=charge, now=now)
        return Outcome.PROCESSED, ""
    if charge.status == ChargeStatus.PENDING:
        record_card_answer(attempt=attempt, charge=charge, now=now)
        return Outcome.IGNORED, f"card charge {charge.provider_status!r}: waiting for its answer"
    if charge.status in (ChargeStatus.FAILED, ChargeStatus.CANCELED, ChargeStatus.EXPIRED):
        record_card_answer(attempt=attempt, charge=charge, now=now)
        return Outcome.PROCESSED, "card refused: the checkout stays payable"
    return Outcome.IGNORED, f"status {charge.provider_status!r} of a card charge"


def adopt_card_transaction(*, checkout: Checkout, charge) -> None:
    """
    A card charge that is paying the checkout becomes its current charge (the
    admin, the receipts and the sandbox read it there). A PIX charge issued
    before is kept as a previous one, so its late payment is still matched to
    the checkout (and listed as a duplicate, never lost).
    """
    locked = lock_checkout(checkout).checkout
    if locked.gateway_transaction_id == charge.transaction_id or locked.status != Checkout.Status.PENDING:
        return
    attempt_gateway_id = CardAttempt.objects.filter(checkout=locked, transaction_id=charge.transaction_id).values_list("gateway_id", flat=True).first()
    if locked.gateway_transaction_id:
        CheckoutCharge.objects.get_or_create(
            gateway_id=locked.gateway_id,
            transaction_id=locked.gateway_transaction_id,
            defaults={"checkout": locked, "pix_expires_at": locked.pix_expires_at},
        )
    locked.gateway_id = attempt_gateway_id or locked.gateway_id
    locked.gateway_transaction_id = charge.transaction_id
    locked.gateway_status = charge.provider_status[:40]
    locked.gateway_response = charge.raw
    locked.pix_code = ""
    locked.pix_url = ""
    locked.pix_expires_at = None
    locked.save(update_fields=CHARGE_FIELDS)
    checkout.gateway_id, checkout.gateway_transaction_id = locked.gateway_id, locked.gateway_transaction_id


def _noted(checkout: Checkout, charge, outcome: str, note: str) -> tuple[str, str]:
    # Informational, after the state change (which read the previous value: a dispute's
    # `in_protest` is what lets a later `paid` restore). A replaced charge's status is not the checkout's.
    if charge.provider_status and not is_replaced_charge(checkout, charge):
        Checkout.objects.filter(pk=checkout.pk).update(gateway_status=charge.provider_status[:40])
    return outcome, note


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
