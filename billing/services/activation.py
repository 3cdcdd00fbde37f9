"""
Activation: a paid checkout becomes access. The one rule for every way a
checkout's money arrives (our PIX via JunglePay or the sandbox, a card, a
reconciled payment). The marketplace's payments are billing.services.marketplace;
handing over guest payments on confirmation is billing.services.guest_claims.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.services import get_guest_payment_owner
from billing import ledger
from billing.checkout_status import save_checkout
from billing.exceptions import TransitionNotAllowed
from billing.ledger_models import LedgerEntry
from billing.models import Checkout, ReconciliationItem, Subscription
from billing.notifications import queue_receipt_after_commit
from billing.periods import continues, paid_period
from billing.services.common import cancel_open_renewals, ended_by_decision, set_transition
from billing.services.erasure import is_erased_email
from billing.services.locks import lock_checkout
from billing.services.offers import count_coupon_use, drop_coupon_off_plan
from billing.services.outbox import emit_payment_paid, emit_subscription_event
from billing.services.proration import credit_adjustment
from billing.services.review import is_duplicate_payment, list_for_review, record_duplicate_payment

logger = logging.getLogger(__name__)


@transaction.atomic
def activate_checkout(
    *,
    checkout: Checkout,
    paid_at: datetime | None = None,
    now: datetime | None = None,
    claimed_by=None,
    transaction_id: str = "",
) -> Subscription | None:
    """
    A paid checkout becomes access. Returns the subscription it paid.

    1. Find the owner: the checkout's user, else the account of its e-mail
       (created, with a set-password e-mail, when there is none: then
       `account_created`, contract §3's sign-in where you paid). An account
       whose e-mail is not confirmed gets nothing: the checkout is marked paid
       and waits unclaimed (returns None) until `claim_guest_payments` hands
       it over (`claimed_by`).
    2. Lock the owner, their subscriptions, then the checkout (services.locks).
       Already paid → return its subscription, change nothing; but already
       paid by another transaction than `transaction_id` (the gateway charge
       that paid now; default the checkout's current one) is a second
       payment: listed (`duplicate_payment`) to be refunded, never a second
       period. `paid_transaction_id` records which transaction paid.
    3. A void charge (is_void_charge: an upgrade we superseded, a renewal of a
       plan the subscription left, any charge of a subscription ended by
       decision — a refund, a withdrawal, an account deletion, an admin — and
       any charge of an account deleted since) is kept (paid, `is_late`) and
       listed for a person (ReconciliationItem `voided_charge_paid`); it
       changes no access.
    4. Otherwise, by purpose, with the price and duration as sold (the
       checkout's snapshot, never today's plan):
       - renewal (or a new purchase by someone already subscribed): extend
         from the current `end_date` — early payment loses no days, payment
         in grace extends from the old `end_date`;
       - upgrade: a new period on the new plan from `start`, of its duration
         plus the credit adjustment (proration.credit_adjustment): paid time
         the credit did not count (a renewal paid after the pricing) is kept,
         converted at the plans' rates; time used since the pricing is
         deducted; rounded down, so no paid day is lost and none unpaid given;
       - new: a period from `start`.
       `start` is max(paid_at, now): a period starts no earlier than access is
       given (a postback recovered late grants the whole period);
       `checkout.paid_at` keeps the gateway's time. Money is never ignored: a
       payment after the charge expired, or after the subscription ended,
       still opens a new period, and the checkout is flagged `is_late`.
    """
    now = now or timezone.now()
    paid_at = paid_at or now
    seen = Checkout.objects.get(pk=checkout.pk)
    owner = _find_owner(seen, claimed_by=claimed_by)
    if owner is None:
        return _keep_unclaimed(seen, paid_at=paid_at, transaction_id=transaction_id, now=now)
    user_id, account_created = owner
    locks = lock_checkout(seen, user_id=user_id)
    checkout, user, own, live = locks.checkout, locks.user, locks.own, locks.live
    claiming = claimed_by is not None and checkout.user_id is None
    if not claiming and is_duplicate_payment(checkout, transaction_id=transaction_id):
        record_duplicate_payment(checkout=checkout, transaction_id=transaction_id, amount_cents=checkout.total_cents, now=now)
        return checkout.subscription
    if checkout.status == Checkout.Status.PAID and not claiming:
        return checkout.subscription
    if checkout.status == Checkout.Status.REFUNDED:
        raise TransitionNotAllowed(_("A refunded checkout cannot be paid again."))

    paying_transaction = checkout.paid_transaction_id or transaction_id or checkout.gateway_transaction_id
    if is_void_charge(checkout, own):
        _keep_for_a_person(checkout, user=user, paid_at=paid_at, transaction_id=paying_transaction, now=now)
        return own
    if checkout.is_trial and live is not None:
        # A second free trial slipped past the checks (two requests at once): it is "paid" (0) and gives nothing.
        _settle_without_access(checkout, user=user, subscription=live, paid_at=paid_at, now=now)
        return live

    grant = _grant_for(checkout, user=user, own=own, live=live, paid_at=paid_at, now=now)
    target = grant.subscription
    _update_paid_subscription(target, checkout=checkout, user=user, reason=grant.reason, now=now)
    # The coupon's use is counted now it is paid (a claimed guest payment was counted when it arrived).
    count_coupon_use(checkout=checkout, subscription=target, counted=claiming)
    _retire_superseded(checkout, own=own, target=target, now=now)
    mark_paid(
        checkout, paid_at=paid_at, transaction_id=paying_transaction, user=user, subscription=target, late=grant.late,
        account_created=account_created,
    )
    _record_activation(
        checkout, target=target, grant_start=grant.starts_at, replaced_from=grant.replaced_from, late=grant.late,
        claiming=claiming, now=now,
    )
    _announce_activation(checkout, target=target, reason=grant.reason, late=grant.late, claiming=claiming, now=now)
    return target


def _find_owner(seen: Checkout, *, claimed_by) -> tuple[int | None, bool] | None:
    """
    Whose the checkout's money is, read before any lock is taken (the lock
    order starts at the user): (user id, whether this payment created the
    account). None: a guest whose e-mail's account is not confirmed, so the
    money waits unclaimed.
    """
    if seen.user_id is not None:
        return seen.user_id, False
    if claimed_by is not None:
        return claimed_by.pk, False
    if is_erased_email(seen.customer_email):
        # A guest checkout of an account deleted since: it stays that (anonymised) account's, and is
        # never given to anyone (is_void_charge lists the payment for a refund).
        return get_user_model().objects.filter(email=seen.customer_email).values_list("pk", flat=True).first(), False
    if seen.status in (Checkout.Status.PAID, Checkout.Status.REFUNDED):
        return None, False  # settled already: the lock's re-check says what happens
    # A guest checkout: its account is found, or created (contract §3's sign-in where you paid).
    owner, account_created = get_guest_payment_owner(
        email=seen.customer_email, name=seen.customer_name, birth_date=seen.customer_birth_date
    )
    if owner is None:
        return None
    return owner.pk, account_created


def _paid_late(checkout: Checkout, *, paid_at: datetime) -> bool:
    """Paid after its charge expired, failed or was canceled."""
    return checkout.status in (Checkout.Status.EXPIRED, Checkout.Status.FAILED, Checkout.Status.CANCELED) or bool(
        checkout.pix_expires_at and paid_at > checkout.pix_expires_at
    )


@dataclass
class _Grant:
    """What a payment buys: the subscription it goes to (unsaved when new), from when, why, and whether late."""

    subscription: Subscription
    starts_at: datetime
    reason: str
    late: bool
    replaced_from: tuple[datetime, datetime] | None = None  # an upgrade's: the remainder of the old period it credited


def _grant_for(checkout: Checkout, *, user, own: Subscription | None, live: Subscription | None, paid_at: datetime, now: datetime) -> _Grant:
    """
    The period a payment opens, by purpose, with the price and duration as
    sold: a continuation extends the live subscription from its end; anything
    else (a first payment, an upgrade, a payment after access had ended)
    starts a new period.
    """
    late = _paid_late(checkout, paid_at=paid_at)
    start = max(paid_at, now)
    in_time = live is not None and continues(live.end_date, at=paid_at)
    if in_time and checkout.purpose != Checkout.Purpose.UPGRADE:
        return _extend_live(checkout, live=live, paid_at=paid_at, start=start, late=late)
    if checkout.purpose != Checkout.Purpose.NEW and not in_time:
        late = True  # the subscription it was meant to continue had already ended
    return _new_period(checkout, user=user, target=live or own, own=own, start=start, now=now, late=late)


def _extend_live(checkout: Checkout, *, live: Subscription, paid_at: datetime, start: datetime, late: bool) -> _Grant:
    """Extension: from the current end, whatever day it is paid on (within grace)."""
    live.start_date = live.start_date or start
    grant_start, live.end_date = paid_period(current_end=live.end_date, paid_at=paid_at, start=start, days=checkout.plan_duration_days)
    reason = Subscription.Reason.RENEWED if checkout.plan_id == live.plan_id else Subscription.Reason.PLAN_CHANGED
    return _Grant(subscription=live, starts_at=grant_start, reason=reason, late=late)


def _new_period(
    checkout: Checkout, *, user, target: Subscription | None, own: Subscription | None, start: datetime, now: datetime, late: bool
) -> _Grant:
    """A new period from `start`: the plan's duration as sold, an upgrade's plus its credit adjustment."""
    upgrade = checkout.purpose == Checkout.Purpose.UPGRADE
    if target is None:
        target = Subscription(user=user, plan=checkout.plan, created_at=now)
    end = start + timedelta(days=checkout.plan_duration_days)
    if upgrade and own is not None:
        # The credit was the unused value of `own` when priced; what is left of it now is what counts.
        end += credit_adjustment(subscription=own, checkout=checkout, start=start)
    replaced_from = None
    if upgrade and target.pk is not None and target.end_date and target.end_date > start:
        replaced_from = (start, target.end_date)
    target.start_date = start
    target.end_date = max(end, start + timedelta(seconds=1))  # the period's CheckConstraint: end after start
    if upgrade and checkout.plan_id != target.plan_id:
        reason = Subscription.Reason.PLAN_CHANGED
    elif checkout.purpose == Checkout.Purpose.RENEWAL:
        reason = Subscription.Reason.RENEWED
    else:
        reason = Subscription.Reason.PAID
    return _Grant(subscription=target, starts_at=start, reason=reason, late=late, replaced_from=replaced_from)


def _update_paid_subscription(target: Subscription, *, checkout: Checkout, user, reason: str, now: datetime) -> None:
    """The paid subscription takes the plan as sold; paying again withdraws a cancel request; active (or trialing) from now."""
    plan = checkout.plan
    target.user = user
    if target.plan_id != plan.pk:
        drop_coupon_off_plan(target, plan_id=plan.pk)  # a recurring coupon discounts only the plans it names
    target.plan = plan
    if target.next_plan_id == plan.pk or checkout.purpose == Checkout.Purpose.UPGRADE:
        target.next_plan = None
    target.cancel_at_period_end = False  # paying again withdraws a cancel request
    target.plan_match_rule = Subscription.PlanMatch.CHECKOUT
    if checkout.is_trial:
        set_transition(target, status=Subscription.Status.TRIALING, reason=Subscription.Reason.TRIAL_STARTED, now=now)
    else:
        set_transition(target, status=Subscription.Status.ACTIVE, reason=reason, now=now)
    target.save()


def _retire_superseded(checkout: Checkout, *, own: Subscription | None, target: Subscription, now: datetime) -> None:
    """A pending subscription the money did not go to will never be paid; a renewal charged for the old period is void."""
    if own is not None and own.pk != target.pk and own.status == Subscription.Status.PENDING:
        # The money went to the live subscription; the pending one never will be paid.
        set_transition(own, status=Subscription.Status.EXPIRED, reason=Subscription.Reason.NEVER_PAID, now=now)
        own.save(update_fields=["status", "last_reason", "last_transition_at", "updated_at"])
    if checkout.purpose != Checkout.Purpose.RENEWAL:
        # The period changed; a renewal charged for the old one is void.
        cancel_open_renewals(target, now=now, exclude_pk=checkout.pk)


def _announce_activation(checkout: Checkout, *, target: Subscription, reason: str, late: bool, claiming: bool, now: datetime) -> None:
    """After commit: the receipt (not for a claim: it went out when the money arrived), the outbound event, the log."""
    if not claiming:
        # The money arrived now (a claim hands over money whose receipt went out when it arrived).
        queue_receipt_after_commit(checkout_pk=checkout.pk)
    if checkout.is_trial:
        # No money moved: the trial's start is the event (and no Purchase goes to the ad platforms).
        emit_subscription_event("subscription.trial_started", target, now=now, checkout=checkout)
    else:
        emit_payment_paid(checkout, target, renewed=reason == Subscription.Reason.RENEWED, now=now)
    logger.info(
        "checkout activated",
        extra={"checkout": str(checkout.public_id), "subscription_id": target.pk, "reason": reason, "late": late},
    )


def mark_paid(
    checkout: Checkout, *, paid_at: datetime, transaction_id: str, user, subscription, late: bool, account_created: bool = False
) -> None:
    """
    The one way a checkout becomes paid (its lock held): when the money
    arrived, which transaction paid it, whose it is and which subscription it
    paid (None: it paid none, kept for a person or for its owner), whether it
    was late, whether a reminder e-mail recovered it; then its status is
    published after commit.
    """
    checkout.status = Checkout.Status.PAID
    checkout.paid_at = paid_at
    checkout.paid_transaction_id = transaction_id or ""
    checkout.user = user
    checkout.subscription = subscription
    checkout.is_late = late
    checkout.is_recovered = checkout.recovery_reminders_sent > 0  # paid after a reminder e-mail
    # Only an account this very payment created may be signed in by the browser that paid (contract §3).
    checkout.account_created = account_created
    save_checkout(
        checkout,
        update_fields=["status", "paid_at", "paid_transaction_id", "user", "subscription", "is_late", "is_recovered", "account_created", "updated_at"],
    )


def _record_activation(checkout, *, target, grant_start, replaced_from, late: bool, claiming: bool, now: datetime) -> None:
    """The ledger of an activation: the payment (once: a claimed guest payment was recorded when it arrived), what an upgrade replaced, the days."""
    rows = [] if claiming else ledger.record_payment(checkout=checkout, now=now, save=False)
    if replaced_from is not None:
        rows.append(ledger.record_revoke(
            subscription=target, starts_at=replaced_from[0], ends_at=replaced_from[1], cause=LedgerEntry.Cause.REPLACED,
            checkout=checkout, now=now, save=False,
        ))
    if checkout.is_trial:
        cause = LedgerEntry.Cause.TRIAL
    elif checkout.purpose == Checkout.Purpose.UPGRADE:
        cause = LedgerEntry.Cause.UPGRADE
    elif late:
        cause = LedgerEntry.Cause.LATE
    elif grant_start != target.start_date or checkout.purpose == Checkout.Purpose.RENEWAL:
        cause = LedgerEntry.Cause.RENEWAL
    elif checkout.total_cents == 0:
        cause = LedgerEntry.Cause.FREE
    else:
        cause = LedgerEntry.Cause.NEW
    rows.append(ledger.record_grant(
        subscription=target, starts_at=grant_start, ends_at=target.end_date, cause=cause, checkout=checkout, now=now, save=False
    ))
    ledger.write(*rows)


def settle_free_checkout(*, checkout: Checkout, now: datetime | None = None) -> Checkout:
    """
    A NEW checkout with nothing to pay (a 100% coupon, no extras) needs no
    gateway charge: it is paid at once, like a trial of the plan's duration.
    Any other checkout is returned unchanged (no transaction is opened for it:
    activate_checkout re-reads and locks what it changes).
    """
    now = now or timezone.now()
    if checkout.total_cents != 0 or checkout.purpose != Checkout.Purpose.NEW or checkout.status != Checkout.Status.PENDING:
        return checkout
    with transaction.atomic():
        activate_checkout(checkout=checkout, paid_at=now, now=now)
        return Checkout.objects.get(pk=checkout.pk)


def is_void_charge(checkout: Checkout, subscription: Subscription | None) -> bool:
    """
    A charge whose payment must not become access by itself: any charge of an
    account deleted since (contract §9.8: it is listed for a refund); any
    renewal or upgrade of a subscription ended by decision (ENDED_BY_DECISION:
    a refund, a withdrawal, a deletion, an admin); an upgrade we canceled
    (superseded by a later one); a renewal we canceled for a plan the
    subscription is no longer on (an upgrade re-based the period). A renewal
    canceled by the user's own cancel stays payable: paying it is the user
    choosing to continue.
    """
    if is_erased_email(checkout.customer_email):
        return True
    if checkout.purpose == Checkout.Purpose.NEW or subscription is None:
        return False
    if ended_by_decision(subscription):
        return True
    if checkout.status != Checkout.Status.CANCELED:
        return False
    return checkout.purpose == Checkout.Purpose.UPGRADE or checkout.plan_id != subscription.plan_id


def _keep_for_a_person(checkout: Checkout, *, user, paid_at: datetime, transaction_id: str, now: datetime) -> None:
    """
    The money is recorded (paid, late) and listed; access is a person's
    decision (refund or extend). The checkout is detached from the
    subscription (kept in the item's detail): it paid for no period of it, so
    refunding it later must not revoke a period other money paid for.
    """
    subscription_id = checkout.subscription_id
    mark_paid(checkout, paid_at=paid_at, transaction_id=transaction_id, user=user, subscription=None, late=True)
    item = None
    if checkout.gateway_id:
        item, _created = list_for_review(
            gateway=checkout.gateway,
            transaction_id=transaction_id or checkout.gateway_transaction_id or str(checkout.public_id),
            kind=ReconciliationItem.Kind.VOIDED_CHARGE_PAID,
            detail={"checkout_total": checkout.total_cents, "subscription_id": subscription_id, "purpose": checkout.purpose},
            checkout=checkout,
            amount_cents=checkout.total_cents,
            now=now,
        )
    ledger.record_listed(
        cause=LedgerEntry.Cause.VOIDED, amount_cents=checkout.total_cents, transaction_id=transaction_id, checkout=checkout,
        subscription_id=subscription_id, user_id=user.pk if user else None, item=item, now=now,
    )
    logger.warning("void charge paid: kept for a person", extra={"checkout": str(checkout.public_id)})


def _settle_without_access(checkout: Checkout, *, user, subscription: Subscription, paid_at: datetime, now: datetime) -> None:
    mark_paid(checkout, paid_at=paid_at, transaction_id="", user=user, subscription=subscription, late=False)
    ledger.record_listed(cause=LedgerEntry.Cause.DUPLICATE, amount_cents=checkout.total_cents, checkout=checkout, now=now)
    logger.warning("duplicate free trial settled without access", extra={"checkout": str(checkout.public_id)})


def _keep_unclaimed(checkout: Checkout, *, paid_at: datetime, transaction_id: str, now: datetime) -> None:
    """The money is recorded (paid, never lost); the access waits for a confirmed owner."""
    checkout = lock_checkout(checkout).checkout  # no user yet: the checkout is all there is to lock
    if is_duplicate_payment(checkout, transaction_id=transaction_id):
        record_duplicate_payment(checkout=checkout, transaction_id=transaction_id, amount_cents=checkout.total_cents, now=now)
        return None
    if checkout.status in (Checkout.Status.PAID, Checkout.Status.REFUNDED):
        return None
    late = _paid_late(checkout, paid_at=paid_at)
    mark_paid(
        checkout, paid_at=paid_at, transaction_id=transaction_id or checkout.gateway_transaction_id, user=None, subscription=None,
        late=late,
    )
    count_coupon_use(checkout=checkout, subscription=None)
    ledger.record_payment(checkout=checkout, now=now)  # the days are granted when it is claimed
    queue_receipt_after_commit(checkout_pk=checkout.pk)
    logger.info("guest payment kept unclaimed: its e-mail's account is not confirmed", extra={"checkout": str(checkout.public_id)})
    return None
