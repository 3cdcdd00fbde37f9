"""
Recording a gateway's answer on a card attempt (billing.models.CardAttempt),
whoever brings it: the charge's own answer, the lookup after a lost one, or
a postback. What the answer does to the checkout and the subscription (a
payment, a refund) goes through the usual services (services.payments);
this module keeps the attempt, the card saved for renewals and the refusal.

Lock order: the attempt row is a leaf taken after the checkout's locks
(services.locks), like the coupon; nothing waits for another lock while
holding it.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction

from billing.cards import refusal_key, refusal_message
from billing.gateways import Charge, ChargeStatus
from billing.models import CardAttempt, Checkout, Subscription
from billing.notifications import card_label, queue_card_refused_notice
from billing.services.outbox import emit_payment_refused
from config.metrics import record_card_refusal

logger = logging.getLogger(__name__)

Status = CardAttempt.Status

# The answer each charge status gives an attempt.
_ATTEMPT_STATUS = {
    ChargeStatus.PAID: Status.PAID,
    ChargeStatus.PENDING: Status.PROCESSING,
    ChargeStatus.FAILED: Status.REFUSED,
    ChargeStatus.CANCELED: Status.REFUSED,
    ChargeStatus.EXPIRED: Status.REFUSED,
    ChargeStatus.REFUNDED: Status.REFUNDED,
}
# Never backwards: what an attempt may become from each status.
_ALLOWED = {
    Status.IN_FLIGHT: {Status.PROCESSING, Status.PAID, Status.REFUSED, Status.REFUNDED, Status.ERROR},
    Status.ERROR: {Status.PROCESSING, Status.PAID, Status.REFUSED, Status.REFUNDED},  # a "lost" charge found after all
    Status.PROCESSING: {Status.PAID, Status.REFUSED, Status.REFUNDED},
    Status.REFUSED: {Status.PAID},  # out-of-order delivery: the latest truth is the gateway's fetch
    Status.PAID: {Status.REFUNDED},
    Status.REFUNDED: {Status.PAID},  # a dispute decided for us
}


def next_charge_at(*, end_date: datetime, refusals: int) -> datetime | None:
    """When an automatic renewal's attempt `refusals + 1` is due: end_date, then each CARD_RENEWAL_RETRY_DAYS day; None when none is left."""
    if refusals == 0:
        return end_date
    retry_days = settings.CARD_RENEWAL_RETRY_DAYS
    if refusals > len(retry_days):
        return None
    return end_date + timedelta(days=retry_days[refusals - 1])


def card_attempt_for_charge(checkout: Checkout, charge: Charge) -> CardAttempt | None:
    """The checkout's card attempt a gateway's charge answers: by transaction id, else the one still waiting under its externalRef."""
    if charge.payment_method != "card":
        return None  # a PIX charge: no query (the postback path's query budget)
    attempts = CardAttempt.objects.filter(checkout=checkout)
    if charge.transaction_id:
        found = attempts.filter(transaction_id=charge.transaction_id).first()
        if found is not None:
            return found
    if not charge.external_ref:
        return None
    # An answer that was lost: its attempt still waits, without a transaction id, under the charge's externalRef.
    return attempts.filter(external_ref=charge.external_ref, transaction_id="").order_by("-created_at", "-pk").first()


@transaction.atomic
def record_card_answer(*, attempt: CardAttempt, charge: Charge, now: datetime) -> CardAttempt:
    """
    Keep what the gateway said on the attempt (status, transaction, card,
    refusal), never moving it backwards; idempotent. A refusal is announced
    (payment.refused) the first time it is recorded. A paid attempt whose
    card the gateway marks reusable saves it on the subscription the checkout
    paid (the caller activated it first; that row is locked by then).
    """
    attempt = CardAttempt.objects.select_for_update().get(pk=attempt.pk)
    target = _ATTEMPT_STATUS.get(charge.status)
    if target is None or (target != attempt.status and target not in _ALLOWED.get(attempt.status, set())):
        return attempt
    first_refusal = target == Status.REFUSED and attempt.status != Status.REFUSED
    attempt.status = target
    attempt.provider_status = charge.provider_status[:40]
    attempt.answered_at = attempt.answered_at or now
    if charge.transaction_id and not attempt.transaction_id:
        attempt.transaction_id = charge.transaction_id
    if charge.card is not None:
        attempt.card_brand = charge.card.brand or attempt.card_brand
        attempt.card_last_digits = charge.card.last_digits or attempt.card_last_digits
    if target == Status.REFUSED:
        attempt.refusal_code = (charge.refusal.code if charge.refusal else "")[:40]
        attempt.refusal_reason = refusal_message(charge.refusal)[:255]
    attempt.save()
    if first_refusal:
        checkout = Checkout.objects.select_related("plan", "subscription__plan").get(pk=attempt.checkout_id)
        emit_payment_refused(checkout, attempt, now=now)
        transaction.on_commit(lambda code=attempt.refusal_code: record_card_refusal(code))  # /metrics: refusals by code
        if attempt.kind == CardAttempt.Kind.RENEWAL:
            _tell_renewal_refused(checkout, attempt)
        logger.info(
            "card refused",
            extra={"checkout": str(checkout.public_id), "attempt": attempt.pk, "code": attempt.refusal_code, "known": bool(refusal_key(charge.refusal))},
        )
    if target == Status.PAID:
        _note_card_on_checkout(attempt, charge)
        save_card(attempt=attempt, charge=charge)
    return attempt


def _tell_renewal_refused(checkout: Checkout, attempt: CardAttempt) -> None:
    """The subscriber learns of the refusal, with a link to pay that renewal by PIX or another card (after commit)."""
    subscription = checkout.subscription
    if subscription is None or subscription.end_date is None:
        return
    refusals = CardAttempt.objects.filter(checkout=checkout, status=Status.REFUSED).count()
    next_try = next_charge_at(end_date=subscription.end_date, refusals=refusals)
    notice = [
        checkout.customer_email, checkout.customer_name, checkout.plan.name, checkout.total_cents, str(checkout.public_id),
        card_label(attempt.card_brand or subscription.card_brand, attempt.card_last_digits or subscription.card_last_digits),
        attempt.refusal_reason, next_try.isoformat() if next_try else "",
    ]
    transaction.on_commit(lambda: queue_card_refused_notice(notice))


def _note_card_on_checkout(attempt: CardAttempt, charge: Charge) -> None:
    """The paid checkout shows which card and how many installments paid it (receipts, admin)."""
    Checkout.objects.filter(pk=attempt.checkout_id).update(
        payment_method=Checkout.Method.CARD,
        installments=charge.installments or attempt.installments,
        card_brand=attempt.card_brand,
        card_last_digits=attempt.card_last_digits,
    )


def save_card(*, attempt: CardAttempt, charge: Charge) -> None:
    """
    The card (id, brand, last digits, expiry: nothing else) kept for automatic
    renewals on the subscription the checkout paid, when the gateway says the
    card is reusable; a card that is not reusable forgets an older one (the
    subscriber chose this card now, and it cannot be charged again).
    """
    subscription_id = Checkout.objects.filter(pk=attempt.checkout_id).values_list("subscription_id", flat=True).first()
    if subscription_id is None or charge.card is None:
        return
    subscription = Subscription.objects.select_for_update().get(pk=subscription_id)
    if not subscription.is_live:
        return
    card = charge.card
    if card.reusable and card.card_id:
        subscription.card_gateway_id = attempt.gateway_id
        subscription.card_id = card.card_id
        subscription.card_brand = card.brand
        subscription.card_last_digits = card.last_digits
        subscription.card_exp_month = card.exp_month
        subscription.card_exp_year = card.exp_year
    elif attempt.kind == CardAttempt.Kind.PURCHASE:
        forget_card_fields(subscription)
    else:
        return
    subscription.save(update_fields=[*CARD_FIELDS, "updated_at"])


CARD_FIELDS = ["card_gateway", "card_id", "card_brand", "card_last_digits", "card_exp_month", "card_exp_year"]


def forget_card_fields(subscription: Subscription) -> None:
    subscription.card_gateway = None
    subscription.card_id = ""
    subscription.card_brand = ""
    subscription.card_last_digits = ""
    subscription.card_exp_month = None
    subscription.card_exp_year = None
