"""
Card payments at the checkout page (contract §3 `POST /api/checkout/card`).

The buyer's browser turns the card into a hash with the gateway's tokenizer;
only the hash reaches us, and it is sent to the gateway and forgotten. One
card charge is one CardAttempt, and it goes in three steps:

1. claim (one short transaction, the checkout row locked): a paid or
   processing checkout answers what it has and charges nothing; an attempt
   whose answer was lost is looked up first (step 0 below); otherwise a new
   attempt is written `in_flight` and COMMITTED before the gateway hears of
   it (one open attempt per checkout, a database constraint), with the
   ChargeAttempt every create of the project records first
   (services.charges.begin_charge_attempt: one create in flight per
   externalRef and gateway, PIX and card alike);
2. the gateway call, outside any transaction, no row locked;
3. the answer applied under the locks (services.payments.apply_charge, the
   same path as a postback): paid activates, processing waits for the
   postback, refused is recorded and the checkout stays payable.

0. An attempt still `in_flight` (a killed worker, a timeout whose lookup
   found nothing) is looked up at the gateway by its externalRef before any
   new charge: found, its answer is applied; not found after
   in_flight_window(), it is closed as `error` (never charged) and the new
   charge goes ahead. A checkout is never paid twice by its own hand: at
   most one attempt is open, and a second payment (PIX paid after the card)
   is listed to be refunded by activation.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.documents import digits_only
from billing.exceptions import (
    CardRefused,
    ChargeInProgress,
    CheckoutNotFound,
    CheckoutNotPayable,
    GatewayError,
    InvalidInput,
)
from billing.gateways import CardChargeRequest, Charge, ChargeStatus, Customer, gateway_for
from billing.gateways.base import CreateUnconfirmed, gateway_budget
from billing.models import CardAttempt, ChargeAttempt, Checkout, CheckoutCharge, Subscription
from billing.notifications import queue_renewal_notices
from billing.services.card_attempts import CARD_FIELDS, forget_card_fields
from billing.services.charges import begin_charge_attempt, charge_items, in_flight_window
from billing.services.gateway_config import gateway_for_new_charge
from billing.services.locks import lock_open_charges, lock_subscription
from billing.services.payments import apply_charge

logger = logging.getLogger(__name__)

# CardAttempt.provider_status of an attempt whose create failed ambiguously and whose lookup found nothing.
UNCONFIRMED = "unconfirmed"


def max_installments_for(checkout: Checkout) -> int:
    """A new purchase may be split up to its plan's max_installments; renewals and upgrades are one payment."""
    return checkout.plan.max_installments if checkout.purpose == Checkout.Purpose.NEW else 1


def next_attempt_number(checkout: Checkout) -> int:
    last = CardAttempt.objects.filter(checkout=checkout).order_by("-number").values_list("number", flat=True).first()
    return (last or 0) + 1


def card_request(checkout: Checkout, attempt: CardAttempt, *, card_hash: str = "", card_id: str = "", client_ip: str = "") -> CardChargeRequest:
    known = set(CardAttempt.objects.filter(checkout=checkout).exclude(transaction_id="").values_list("transaction_id", flat=True))
    known |= set(CheckoutCharge.objects.filter(checkout=checkout).values_list("transaction_id", flat=True))
    if checkout.gateway_transaction_id:
        known.add(checkout.gateway_transaction_id)
    return CardChargeRequest(
        external_ref=attempt.external_ref,
        amount_cents=attempt.amount_cents,
        installments=attempt.installments,
        customer=Customer(
            name=checkout.customer_name,
            email=checkout.customer_email,
            document=digits_only(checkout.customer_document),
            phone=digits_only(checkout.customer_phone),
        ),
        items=charge_items(checkout),
        postback_url=attempt.gateway.postback_url,
        card_hash=card_hash,
        card_id=card_id,
        client_ip=client_ip,
        metadata={"checkout_id": str(checkout.public_id), "purpose": checkout.purpose, "attempt": attempt.kind},
        known_transaction_ids=tuple(sorted(known)),
    )


def charge_card(*, checkout_id, card_hash: str, installments: int = 1, client_ip: str = "", now: datetime | None = None) -> CardAttempt:
    """
    Charge the checkout's total once to the card behind `card_hash`, in
    `installments` (the amount does not change). Returns the attempt, paid
    or processing; raises CardRefused (the bank's reason in the buyer's
    language; the checkout stays payable), ChargeInProgress (another attempt
    is being answered right now), CheckoutNotFound, CheckoutNotPayable,
    InvalidInput, GatewayUnavailable or GatewayRejected. Calling it again
    for a paid or processing checkout returns that attempt and charges nothing.
    """
    now = now or timezone.now()
    for _round in range(3):
        attempt, new = _claim_purchase_attempt(checkout_id=checkout_id, installments=installments, now=now)
        if new:
            break
        if attempt.status == CardAttempt.Status.IN_FLIGHT:
            recover_card_attempt(attempt=attempt, now=now)  # a lost answer: looked up before anything else
            continue
        return attempt  # paid or processing already: charges nothing
    else:  # pragma: no cover - a recovery that keeps finding an open attempt
        raise ChargeInProgress(_("Your card payment is being processed. Please wait a moment."))
    checkout = Checkout.objects.select_related("plan").get(pk=attempt.checkout_id)
    request = card_request(checkout, attempt, card_hash=card_hash, client_ip=client_ip)
    attempt = send_card_charge(attempt=attempt, request=request, now=now)
    if attempt.status == CardAttempt.Status.REFUSED:
        raise CardRefused(attempt.refusal_reason)
    return attempt


@transaction.atomic
def _claim_purchase_attempt(*, checkout_id, installments: int, now: datetime) -> tuple[CardAttempt, bool]:
    """Step 1: (the attempt to answer with, False), or (a new in-flight attempt, committed with the caller's return, True)."""
    checkout = Checkout.objects.select_for_update(of=("self",)).select_related("plan").filter(public_id=checkout_id).first()
    if checkout is None:
        raise CheckoutNotFound(_("Checkout not found."))
    attempts = CardAttempt.objects.filter(checkout=checkout)
    if checkout.status == Checkout.Status.PAID:
        paid = attempts.filter(status=CardAttempt.Status.PAID, transaction_id=checkout.paid_transaction_id).first()
        if paid is None:
            raise CheckoutNotPayable(_("This checkout is already paid."), code="already_paid")
        return paid, False
    open_attempt = attempts.filter(status__in=CardAttempt.OPEN_STATUSES).first()
    if open_attempt is not None:
        if open_attempt.status == CardAttempt.Status.PROCESSING:
            return open_attempt, False
        if open_attempt.provider_status == UNCONFIRMED or open_attempt.created_at <= now - in_flight_window():
            return open_attempt, False  # its answer was lost: the caller looks it up
        raise ChargeInProgress(_("Your card payment is being processed. Please wait a moment."))
    if checkout.status != Checkout.Status.PENDING:
        raise CheckoutNotPayable(_("This checkout can no longer be paid."))
    if not checkout.plan.accepts_card:
        raise InvalidInput("payment_method", _("This plan does not accept this payment method."), code="method_not_accepted")
    if not 1 <= installments <= max_installments_for(checkout):
        raise InvalidInput(
            "installments",
            _("Choose from 1 to %(max)d installments.") % {"max": max_installments_for(checkout)},
            code="invalid_installments",
        )
    if checkout.total_cents <= 0:
        raise CheckoutNotPayable(_("There is nothing to pay."), code="nothing_to_pay")
    gateway = gateway_for_new_charge()
    try:
        with transaction.atomic():
            attempt = CardAttempt.objects.create(
                checkout=checkout,
                subscription=checkout.subscription,
                gateway=gateway.config,
                kind=CardAttempt.Kind.PURCHASE,
                number=next_attempt_number(checkout),
                external_ref=str(checkout.public_id),  # the checkout's uuid, as for its PIX (contract §3)
                amount_cents=checkout.total_cents,
                installments=installments,
                created_at=now,
            )
    except IntegrityError:
        raise ChargeInProgress(_("Your card payment is being processed. Please wait a moment.")) from None
    claim_create(checkout=checkout, attempt=attempt, now=now)
    checkout.payment_method = Checkout.Method.CARD
    checkout.installments = installments
    checkout.save(update_fields=["payment_method", "installments", "updated_at"])
    return attempt, True


def claim_create(*, checkout: Checkout, attempt: CardAttempt, now: datetime) -> None:
    """
    The project's record of a create about to be sent (ChargeAttempt), in the
    claim's transaction: while another create of the same externalRef is in
    flight at this gateway (a PIX being issued for the same checkout, say),
    no card is charged (ChargeInProgress; the claim rolls back).
    """
    charge_attempt, _look_first = begin_charge_attempt(
        checkout=checkout, gateway_config=attempt.gateway, external_ref=attempt.external_ref, now=now
    )
    if charge_attempt is None:
        raise ChargeInProgress(_("Your card payment is being processed. Please wait a moment."))


def _close_create(attempt: CardAttempt, *, outcome: str, now: datetime, transaction_id: str = "", error: str = "") -> None:
    ChargeAttempt.objects.filter(
        gateway_id=attempt.gateway_id, external_ref=attempt.external_ref, outcome=ChargeAttempt.Outcome.IN_FLIGHT
    ).update(outcome=outcome, finished_at=now, transaction_id=transaction_id[:100], error=error[:300])


def send_card_charge(*, attempt: CardAttempt, request: CardChargeRequest, now: datetime) -> CardAttempt:
    """
    Step 2 and 3: the gateway call (no transaction open, no row locked), then
    its answer applied. An ambiguous failure whose lookup found nothing leaves
    the attempt in flight, marked, for the next call to look up first; a
    failure that certainly charged nothing closes it as `error`.
    """
    gateway = gateway_for(attempt.gateway)
    try:
        # Within the request's (or this task's) gateway budget: never outliving the worker mid-call.
        with gateway_budget():
            charge = gateway.create_card_charge(request)
    except CreateUnconfirmed as exc:
        CardAttempt.objects.filter(pk=attempt.pk, status=CardAttempt.Status.IN_FLIGHT).update(provider_status=UNCONFIRMED)
        _close_create(attempt, outcome=ChargeAttempt.Outcome.UNCONFIRMED, now=now, error=str(exc))
        raise
    except GatewayError as exc:
        # Refused by the provider before charging (bad details, configuration) or never sent (breaker, no key).
        CardAttempt.objects.filter(pk=attempt.pk, status=CardAttempt.Status.IN_FLIGHT).update(status=CardAttempt.Status.ERROR, answered_at=now)
        _close_create(attempt, outcome=ChargeAttempt.Outcome.FAILED, now=now, error=str(exc))
        raise
    _close_create(attempt, outcome=ChargeAttempt.Outcome.CHARGED, now=now, transaction_id=charge.transaction_id)
    return apply_card_answer(attempt=attempt, charge=charge, now=now)


def apply_card_answer(*, attempt: CardAttempt, charge: Charge, now: datetime) -> CardAttempt:
    """Step 3: the gateway's answer applied like a postback's (same services, same locks), in one transaction."""
    if charge.status == ChargeStatus.UNKNOWN:
        logger.warning("card charge with an unknown status", extra={"attempt": attempt.pk, "status": charge.provider_status})
    with transaction.atomic():
        checkout = Checkout.objects.select_related("plan").get(pk=attempt.checkout_id)
        if not charge.transaction_id:
            raise GatewayError(_("The payment provider answered without a transaction."))
        # Bind the transaction to this attempt first, so apply_charge finds it by id.
        CardAttempt.objects.filter(pk=attempt.pk, transaction_id="").update(transaction_id=charge.transaction_id)
        apply_charge(checkout=checkout, charge=charge, now=now)
    return CardAttempt.objects.get(pk=attempt.pk)


def recover_card_attempt(*, attempt: CardAttempt, now: datetime) -> CardAttempt:
    """
    Step 0: an in-flight attempt whose answer was lost, looked up by its
    externalRef (skipping the transactions we know). Found: its answer is
    applied. Not found: closed as `error`, never charged. The gateway being
    down leaves it as it is, for the next call (never a second charge).
    """
    gateway = gateway_for(attempt.gateway)
    checkout = Checkout.objects.get(pk=attempt.checkout_id)
    known = set(CardAttempt.objects.filter(checkout=checkout).exclude(transaction_id="").values_list("transaction_id", flat=True))
    known |= set(CheckoutCharge.objects.filter(checkout=checkout).values_list("transaction_id", flat=True))
    if checkout.gateway_transaction_id:
        known.add(checkout.gateway_transaction_id)
    with gateway_budget():
        found = gateway.find_charge(external_ref=attempt.external_ref, skip_transaction_ids=tuple(known))
    if found is not None and found.payment_method == "card":
        logger.info("lost card answer found by externalRef", extra={"attempt": attempt.pk, "transaction": found.transaction_id})
        _close_create(attempt, outcome=ChargeAttempt.Outcome.CHARGED, now=now, transaction_id=found.transaction_id)
        return apply_card_answer(attempt=attempt, charge=found, now=now)
    CardAttempt.objects.filter(pk=attempt.pk, status=CardAttempt.Status.IN_FLIGHT).update(
        status=CardAttempt.Status.ERROR, answered_at=now, provider_status="not_found"
    )
    _close_create(attempt, outcome=ChargeAttempt.Outcome.ABANDONED, now=now, error="not found at the gateway")
    logger.warning("lost card attempt not found at the gateway: closed, never charged", extra={"attempt": attempt.pk})
    return CardAttempt.objects.get(pk=attempt.pk)


@transaction.atomic
def remove_saved_card(*, user, now: datetime | None = None) -> int:
    """
    Forget the user's saved cards (the gateway's card id leaves our records):
    no automatic charge follows; renewals are PIX, as for any subscription.
    An attempt already in flight is not undone (its answer still applies).
    Returns how many subscriptions had a card.
    """
    now = now or timezone.now()
    changed = 0
    notices = []
    for subscription_id in Subscription.objects.filter(user=user).exclude(card_id="").values_list("pk", flat=True):
        subscription = lock_subscription(Subscription(pk=subscription_id))
        if not subscription.card_id:
            continue
        forget_card_fields(subscription)
        subscription.save(update_fields=[*CARD_FIELDS, "updated_at"])
        changed += 1
        # A renewal already issued for the card becomes a PIX one, e-mailed like any other (contract §3).
        for renewal in lock_open_charges(subscription):
            if renewal.purpose != Checkout.Purpose.RENEWAL or renewal.payment_method != Checkout.Method.CARD:
                continue
            Checkout.objects.filter(pk=renewal.pk).update(payment_method=Checkout.Method.PIX, updated_at=now)
            notices.append([
                renewal.customer_email, renewal.customer_name, renewal.plan.name, renewal.total_cents,
                str(renewal.public_id), subscription.end_date.isoformat(), False, "",
            ])
    if notices:
        transaction.on_commit(lambda: queue_renewal_notices(notices))
    if changed:
        logger.info("saved card removed", extra={"user_id": user.pk, "subscriptions": changed})
    return changed
