"""
Automatic renewal with the saved card (contract §8), run by the sweep.

The renewal checkout is issued RENEWAL_NOTICE_DAYS before `end_date` like a
PIX one (services.sweep), marked `card` when the subscription has a saved
card, and its notice names the card and the day. From `end_date` on, each
sweep charges the due ones:

- attempt 1 at `end_date`; after a refusal, one more on each day of
  CARD_RENEWAL_RETRY_DAYS after `end_date` (inside the grace days); the
  subscriber is e-mailed a link to pay that renewal by PIX or another card;
- unpaid at the end of grace, the sweep expires the subscription as before;
- set to cancel at period end, or its card removed: never charged (the
  renewal stays payable by PIX from its e-mail and the account page).

Safe under every fault, like a purchase (services.cards): the attempt is
claimed by inserting it, attempt number n+1 of its checkout (unique): two
sweeps at once, one insert wins, one charge. It is committed `in_flight`
before the gateway call, which runs outside any transaction; the answer is
applied under the locks. An attempt whose worker died mid-call is looked up
by its own externalRef before anything else; a gateway that is down leaves
it to the next run (never charged twice for one period).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction

from billing.exceptions import ChargeInProgress, GatewayError
from billing.gateways.sandbox import sandbox_allowed
from billing.models import CardAttempt, Checkout, PaymentGateway, Subscription
from billing.services.card_attempts import next_charge_at
from billing.services.cards import (
    UNCONFIRMED,
    card_request,
    claim_create,
    next_attempt_number,
    recover_card_attempt,
    send_card_charge,
)
from billing.services.charges import in_flight_window
from billing.services.locks import lock_subscription

logger = logging.getLogger(__name__)

# Renewals charged per sweep run at most; the rest wait for the next run (every 5 minutes).
CHARGES_PER_RUN = 200


@dataclass
class RenewalCharges:
    charged: int = 0
    paid: int = 0
    refused: int = 0
    processing: int = 0
    recovered: int = 0
    failed: int = 0


def due_card_renewals(*, now: datetime):
    """Open renewal charges of live subscriptions with a saved card, whose end_date has come (what the sweep looks at)."""
    return (
        Checkout.objects.filter(
            purpose=Checkout.Purpose.RENEWAL,
            status=Checkout.Status.PENDING,
            subscription__status__in=Subscription.LIVE_STATUSES,
            subscription__cancel_at_period_end=False,
            subscription__end_date__lte=now,
        )
        .exclude(subscription__card_id="")
        .select_related("subscription", "plan")
        .order_by("subscription__end_date", "pk")
    )


def charge_due_card_renewals(*, now: datetime, limit: int = CHARGES_PER_RUN) -> RenewalCharges:
    """One pass of the sweep over the due card renewals; a failure of one never stops the others."""
    result = RenewalCharges()
    for checkout in due_card_renewals(now=now)[:limit]:
        try:
            outcome = charge_renewal(checkout=checkout, now=now)
        except GatewayError as exc:
            # Down, or refused the request itself: the attempt is left for the next run (services.cards).
            result.failed += 1
            logger.warning("card renewal not charged this run", extra={"checkout": str(checkout.public_id), "error": str(exc)})
            continue
        if outcome:
            setattr(result, outcome, getattr(result, outcome) + 1)
            if outcome in ("paid", "refused", "processing"):
                result.charged += 1
    return result


def charge_renewal(*, checkout: Checkout, now: datetime) -> str:
    """
    Charge one renewal's saved card if an attempt is due; returns what
    happened ("paid", "refused", "processing", "recovered") or "" (nothing due,
    claimed by another run, or no longer chargeable).
    """
    attempts = list(CardAttempt.objects.filter(checkout=checkout).order_by("number"))
    last = attempts[-1] if attempts else None
    if last is not None and last.status == CardAttempt.Status.IN_FLIGHT:
        if last.provider_status != UNCONFIRMED and last.created_at > now - in_flight_window():
            return ""  # another run is waiting for its answer right now
        recovered = recover_card_attempt(attempt=last, now=now)
        if recovered.status != CardAttempt.Status.ERROR:
            return "recovered"
        # Never reached the gateway: this run charges it.
    elif last is not None and last.status in (CardAttempt.Status.PROCESSING, CardAttempt.Status.PAID):
        return ""  # the gateway's answer (its postback) is on its way, or it is paid
    refusals = sum(1 for a in attempts if a.status == CardAttempt.Status.REFUSED)
    due_at = next_charge_at(end_date=checkout.subscription.end_date, refusals=refusals)
    if due_at is None or now < due_at:
        return ""

    attempt = _claim(checkout=checkout, number=len(attempts) + 1, now=now)
    if attempt is None:
        return ""
    subscription = attempt.subscription
    request = card_request(checkout, attempt, card_id=subscription.card_id)
    attempt = send_card_charge(attempt=attempt, request=request, now=now)
    logger.info(
        "card renewal charged",
        extra={"checkout": str(checkout.public_id), "attempt": attempt.number, "status": attempt.status},
    )
    return {CardAttempt.Status.PAID: "paid", CardAttempt.Status.REFUSED: "refused", CardAttempt.Status.PROCESSING: "processing"}.get(
        attempt.status, ""
    )


@transaction.atomic
def _claim(*, checkout: Checkout, number: int, now: datetime) -> CardAttempt | None:
    """
    The compare-and-set claim of attempt `number`, decided on what the
    caller read: under the subscription's locks (its user, it, its open
    renewal) the rule is checked again, and the attempt is inserted only if
    it is still the next one (another run that charged meanwhile made it
    `number` already: this one charges nothing; two inserts of the same
    number at once: one loses on the unique constraint). Committed before
    the gateway hears of it.
    """
    subscription = lock_subscription(checkout.subscription)
    locked = Checkout.objects.filter(pk=checkout.pk, status=Checkout.Status.PENDING).first()
    if (
        locked is None
        or not subscription.card_id
        or subscription.cancel_at_period_end
        or not subscription.is_live
        or subscription.card_gateway_id is None
    ):
        return None
    gateway = PaymentGateway.objects.get(pk=subscription.card_gateway_id)
    if gateway.kind == PaymentGateway.Kind.SANDBOX and not sandbox_allowed():
        return None
    if next_attempt_number(locked) != number:
        return None  # another run made an attempt since we looked
    if CardAttempt.objects.filter(checkout=locked, status__in=CardAttempt.OPEN_STATUSES).exists():
        return None
    try:
        with transaction.atomic():
            attempt = CardAttempt.objects.create(
                checkout=locked,
                subscription=subscription,
                gateway=gateway,
                kind=CardAttempt.Kind.RENEWAL,
                number=number,
                external_ref=str(uuid.uuid4()),  # one per attempt (contract §8)
                amount_cents=locked.total_cents,
                installments=1,
                created_at=now,
            )
            claim_create(checkout=locked, attempt=attempt, now=now)
    except (IntegrityError, ChargeInProgress):
        return None  # another run claimed this attempt a moment ago
    attempt.subscription = subscription
    return attempt
