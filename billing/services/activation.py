"""
Activation: a paid checkout becomes access. The one rule for every way money
arrives (our PIX via JunglePay or the sandbox, a reconciled payment, a
marketplace postback).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.services import declare_birth_date, get_guest_payment_owner
from billing import ledger
from billing.checkout_status import save_checkout
from billing.exceptions import MarketplaceError, TransitionNotAllowed
from billing.gateways import ChargeStatus
from billing.ledger_models import LedgerEntry
from billing.models import Checkout, PaymentGateway, Plan, ReconciliationItem, Subscription, UnclaimedMarketplacePayment
from billing.notifications import queue_marketplace_receipt_after_commit, queue_receipt_after_commit
from billing.periods import continues, paid_period
from billing.services.common import cancel_open_renewals, ended_by_decision, set_transition
from billing.services.erasure import is_erased_email
from billing.services.locks import lock_checkout, lock_user
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
    user_id = seen.user_id
    account_created = False
    if user_id is None and claimed_by is not None:
        user_id = claimed_by.pk
    elif user_id is None and is_erased_email(seen.customer_email):
        # A guest checkout of an account deleted since: it stays that (anonymised) account's, and is
        # never given to anyone (is_void_charge lists the payment for a refund).
        user_id = get_user_model().objects.filter(email=seen.customer_email).values_list("pk", flat=True).first()
    elif user_id is None and seen.status not in (Checkout.Status.PAID, Checkout.Status.REFUNDED):
        # A guest checkout: its account is resolved before any lock is taken (the lock order).
        owner, account_created = get_guest_payment_owner(
            email=seen.customer_email, name=seen.customer_name, birth_date=seen.customer_birth_date
        )
        if owner is None:
            return _keep_unclaimed(seen, paid_at=paid_at, transaction_id=transaction_id, now=now)
        user_id = owner.pk
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

    late = checkout.status in (Checkout.Status.EXPIRED, Checkout.Status.FAILED, Checkout.Status.CANCELED) or bool(
        checkout.pix_expires_at and paid_at > checkout.pix_expires_at
    )
    start = max(paid_at, now)
    plan = checkout.plan
    duration = timedelta(days=checkout.plan_duration_days)
    in_time = live is not None and continues(live.end_date, at=paid_at)

    if checkout.is_trial and live is not None:
        # A second free trial slipped past the checks (two requests at once): it is "paid" (0) and gives nothing.
        _settle_without_access(checkout, user=user, subscription=live, paid_at=paid_at, now=now)
        return live

    replaced_from = None  # an upgrade's start: the remainder of the old period it credited is replaced
    if in_time and checkout.purpose != Checkout.Purpose.UPGRADE:
        # Extension: from the current end, whatever day it is paid on (within grace).
        target = live
        target.start_date = target.start_date or start
        grant_start, target.end_date = paid_period(
            current_end=target.end_date, paid_at=paid_at, start=start, days=checkout.plan_duration_days
        )
        reason = Subscription.Reason.RENEWED if plan.pk == target.plan_id else Subscription.Reason.PLAN_CHANGED
    else:
        # A new period: first payment, upgrade, or a payment that arrived after access had ended.
        target = live or own
        if checkout.purpose != Checkout.Purpose.NEW and not in_time:
            late = True  # the subscription it was meant to continue had already ended
        if target is None:
            target = Subscription(user=user, plan=plan, created_at=now)
        end = start + duration
        if checkout.purpose == Checkout.Purpose.UPGRADE and own is not None:
            # The credit was the unused value of `own` when priced; what is left of it now is what counts.
            end += credit_adjustment(subscription=own, checkout=checkout, start=start)
        if checkout.purpose == Checkout.Purpose.UPGRADE and target.pk is not None and target.end_date and target.end_date > start:
            replaced_from = (start, target.end_date)
        target.start_date = start
        target.end_date = max(end, start + timedelta(seconds=1))  # the period's CheckConstraint: end after start
        grant_start = start
        if checkout.purpose == Checkout.Purpose.UPGRADE and plan.pk != target.plan_id:
            reason = Subscription.Reason.PLAN_CHANGED
        elif checkout.purpose == Checkout.Purpose.RENEWAL:
            reason = Subscription.Reason.RENEWED
        else:
            reason = Subscription.Reason.PAID

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

    # The coupon's use is counted now it is paid (a claimed guest payment was counted when it arrived).
    count_coupon_use(checkout=checkout, subscription=target, counted=claiming)

    if own is not None and own.pk != target.pk and own.status == Subscription.Status.PENDING:
        # The money went to the live subscription; the pending one never will be paid.
        set_transition(own, status=Subscription.Status.EXPIRED, reason=Subscription.Reason.NEVER_PAID, now=now)
        own.save(update_fields=["status", "last_reason", "last_transition_at", "updated_at"])
    if checkout.purpose != Checkout.Purpose.RENEWAL:
        # The period changed; a renewal charged for the old one is void.
        cancel_open_renewals(target, now=now, exclude_pk=checkout.pk)

    mark_paid(
        checkout, paid_at=paid_at, transaction_id=paying_transaction, user=user, subscription=target, late=late,
        account_created=account_created,
    )
    _record_activation(checkout, target=target, grant_start=grant_start, replaced_from=replaced_from, late=late, claiming=claiming, now=now)
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
    return target


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


@transaction.atomic
def settle_free_checkout(*, checkout: Checkout, now: datetime | None = None) -> Checkout:
    """
    A NEW checkout with nothing to pay (a 100% coupon, no extras) needs no
    gateway charge: it is paid at once, like a trial of the plan's duration.
    Any other checkout is returned unchanged.
    """
    now = now or timezone.now()
    if checkout.total_cents != 0 or checkout.purpose != Checkout.Purpose.NEW or checkout.status != Checkout.Status.PENDING:
        return checkout
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
    late = checkout.status in (Checkout.Status.EXPIRED, Checkout.Status.FAILED, Checkout.Status.CANCELED) or bool(
        checkout.pix_expires_at and paid_at > checkout.pix_expires_at
    )
    mark_paid(
        checkout, paid_at=paid_at, transaction_id=transaction_id or checkout.gateway_transaction_id, user=None, subscription=None,
        late=late,
    )
    count_coupon_use(checkout=checkout, subscription=None)
    ledger.record_payment(checkout=checkout, now=now)  # the days are granted when it is claimed
    queue_receipt_after_commit(checkout_pk=checkout.pk)
    logger.info("guest payment kept unclaimed: its e-mail's account is not confirmed", extra={"checkout": str(checkout.public_id)})
    return None


def claim_guest_payments(*, user, now: datetime) -> list[Subscription]:
    """
    The owner of an e-mail proved they read it: the guest payments made with
    it that waited unclaimed become theirs, oldest first, each activated as
    if paid now (the access, and so the period, starts at the claim; the
    checkout keeps when the money arrived). Idempotent: a claimed checkout
    has a user and is skipped.
    """
    if user.email_confirmed_at is None:
        return []
    claimed = []
    pending = Checkout.objects.unclaimed().filter(customer_email__iexact=user.email).order_by("paid_at", "pk")
    for checkout in pending:
        with transaction.atomic():
            money_paid_at, was_late = checkout.paid_at, checkout.is_late
            # activate_checkout locks in the one order and re-checks under the lock: a checkout
            # claimed (or refunded) meanwhile by a concurrent call is left as it is.
            try:
                subscription = activate_checkout(checkout=checkout, paid_at=now, now=now, claimed_by=user)
            except TransitionNotAllowed:
                continue  # refunded meanwhile: nothing to hand over
            if not Checkout.objects.filter(pk=checkout.pk, user=user, subscription=subscription).exists():
                continue
            # activate_checkout recorded the claim time as the payment's; the money came earlier.
            claimed_checkout = Checkout.objects.get(pk=checkout.pk)
            claimed_checkout.paid_at, claimed_checkout.is_late = money_paid_at, was_late
            save_checkout(claimed_checkout, update_fields=["paid_at", "is_late", "updated_at"])
            if checkout.customer_birth_date is not None and user.birth_date is None:
                # The payer's declared age becomes the owner's (activate_checkout locked the user row already).
                user = declare_birth_date(user=user, birth_date=checkout.customer_birth_date, now=now)
            logger.info("guest payment claimed", extra={"checkout": str(checkout.public_id), "user_id": user.pk})
            claimed.append(subscription)
    claimed.extend(_claim_marketplace_payments(user=user, now=now))
    return claimed


def claim_guest_payments_on_confirmation(*, user, now: datetime, **kwargs) -> None:
    """Receiver of accounts' `email_confirmed` (connected in BillingConfig.ready())."""
    claim_guest_payments(user=user, now=now)


def _claim_marketplace_payments(*, user, now: datetime) -> list[Subscription]:
    """
    The marketplace payments that waited for this e-mail, oldest first, each
    applied through record_marketplace_payment as if it arrived now (its
    PENDING first when one came, then its PAID): the same amount and period
    rules, the period starting at the claim. Idempotent: a claimed record is
    skipped; record_marketplace_payment is idempotent per external id.
    """
    claimed = []
    waiting = UnclaimedMarketplacePayment.objects.filter(email__iexact=user.email, claimed_at__isnull=True).order_by("received_at", "pk")
    for record_id in waiting.values_list("pk", flat=True):
        with transaction.atomic():
            lock_user(user.pk)  # the one order: the buyer, then the waiting record, then subscriptions
            record = UnclaimedMarketplacePayment.objects.select_for_update().filter(pk=record_id, claimed_at__isnull=True).first()
            if record is None:
                continue  # claimed meanwhile by a concurrent confirmation
            subscription = None
            if record.pending_amount_cents is not None:
                subscription = record_marketplace_payment(
                    external_id=record.external_id, status=ChargeStatus.PENDING, amount_cents=record.pending_amount_cents,
                    email=record.email, name=record.name, now=now,
                )
            if record.paid_at is not None:
                subscription = record_marketplace_payment(
                    external_id=record.external_id, status=ChargeStatus.PAID, amount_cents=record.paid_amount_cents,
                    email=record.email, name=record.name, now=now,
                )
            record.claimed_at = now
            record.subscription = subscription
            record.save(update_fields=["claimed_at", "subscription"])
            logger.info("marketplace payment claimed", extra={"external_id": record.external_id, "user_id": user.pk})
            if subscription is not None and record.paid_at is not None:
                claimed.append(subscription)
    return claimed


# ---------------------------------------------------------------------------
# Marketplace (Dias): no checkout of ours, only the marketplace's postback.
# PENDING creates a pending subscription keyed by the marketplace transaction
# id (`external_id`, unique in the database) and keeps the amount it
# announced; PAID activates it, creating it first when PENDING never came.
# A payment grants a plan only when its amount is exactly that plan's price
# (or the amount of the PENDING it confirms); any other amount is kept and
# listed for a person, never turned into access.
# ---------------------------------------------------------------------------


def match_plan(*, amount_cents: int | None) -> Plan | None:
    """The active plan whose price is exactly the amount paid; None when there is none."""
    if amount_cents is None:
        return None
    return Plan.objects.filter(is_active=True, price_cents=amount_cents).order_by("display_order", "pk").first()


def _plan_paid_for(pending: Subscription | None, amount_cents: int | None) -> Plan | None:
    """What a marketplace amount buys: the pending subscription's plan when it confirms the PENDING's amount, else an exact price."""
    if pending is not None and pending.status == Subscription.Status.PENDING:
        # Rows from before amounts were kept: the plan's price is what PENDING announced.
        expected = pending.external_amount_cents if pending.external_amount_cents is not None else pending.plan.price_cents
        return pending.plan if amount_cents == expected else None
    return match_plan(amount_cents=amount_cents)


def _list_marketplace_amount(*, external_id: str, status: ChargeStatus, amount_cents, email: str, pending, now) -> None:
    expected = None
    if pending is not None and pending.status == Subscription.Status.PENDING:
        expected = pending.external_amount_cents if pending.external_amount_cents is not None else pending.plan.price_cents
    gateway = PaymentGateway.objects.get(kind=PaymentGateway.Kind.DIAS)
    item, _created = list_for_review(
        gateway=gateway,
        transaction_id=external_id,
        kind=ReconciliationItem.Kind.MARKETPLACE_AMOUNT_MISMATCH,
        detail={"status": str(status), "amount": amount_cents, "expected_amount": expected, "payer_email": email},
        amount_cents=amount_cents,
        reopen=status == ChargeStatus.PAID,  # the money itself arrived: a person looks again
        now=now,
    )
    listed = LedgerEntry.objects.filter(kind=LedgerEntry.Kind.LISTED, gateway=gateway, transaction_id=external_id[:100])
    if status == ChargeStatus.PAID and not listed.exists():  # the money arrived (once; a re-delivery adds nothing)
        ledger.record_listed(
            cause=LedgerEntry.Cause.AMOUNT_MISMATCH, amount_cents=amount_cents, gateway=gateway, transaction_id=external_id,
            item=item, now=now,
        )
    logger.warning(
        "marketplace amount matches no plan: listed for a person",
        extra={"external_id": external_id, "amount": amount_cents, "expected": expected},
    )


def _keep_marketplace_unclaimed(*, external_id: str, status: ChargeStatus, amount_cents, email: str, name: str, now) -> None:
    """
    A marketplace event for an e-mail whose account is not confirmed: kept
    (never lost, never given to that account) until the mailbox owner
    confirms. Idempotent: the first PENDING and the first PAID are what count.
    """
    record, _created = UnclaimedMarketplacePayment.objects.get_or_create(
        external_id=external_id, defaults={"email": email.strip().lower(), "name": name[:150], "received_at": now}
    )
    record = UnclaimedMarketplacePayment.objects.select_for_update().get(pk=record.pk)
    if record.claimed_at is not None:
        if status == ChargeStatus.PENDING or record.paid_at is not None:
            return  # a re-delivery of what the claim already applied
        # The owner confirmed between our look at the account and this lock: retried, then applied to them.
        raise MarketplaceError(_("The marketplace payment was claimed meanwhile; it will be applied on retry."))
    if status == ChargeStatus.PENDING and record.pending_amount_cents is None and record.paid_at is None:
        record.pending_amount_cents = amount_cents
        record.save(update_fields=["pending_amount_cents"])
    elif status == ChargeStatus.PAID and record.paid_at is None:
        record.paid_amount_cents = amount_cents
        record.paid_at = now
        record.save(update_fields=["paid_amount_cents", "paid_at"])
    logger.info("marketplace payment kept unclaimed: its e-mail's account is not confirmed", extra={"external_id": external_id})


@transaction.atomic
def record_marketplace_payment(
    *, external_id: str, status: ChargeStatus, amount_cents: int | None, email: str, name: str = "", now=None
) -> Subscription | None:
    """
    Apply one marketplace event; idempotent (the same event twice changes
    nothing) and safe under concurrent deliveries: the buyer's row and the
    subscription row are locked before anything is read to decide.

    Returns the subscription the event created or paid, or None when its
    amount matches no plan (nor the PENDING it confirms): then nothing but a
    ReconciliationItem is written, for a person to look at. Also None while
    the payer's e-mail belongs to an account not yet confirmed (contract §3):
    the event is kept as an UnclaimedMarketplacePayment and applied when the
    mailbox owner confirms (claim_guest_payments), the period starting then.
    """
    now = now or timezone.now()
    if not external_id:
        raise MarketplaceError(_("The marketplace payment has no transaction id."))
    if not email:
        raise MarketplaceError(_("The marketplace payment has no payer e-mail."))
    if status not in (ChargeStatus.PENDING, ChargeStatus.PAID):
        raise MarketplaceError(_("Unknown marketplace status."))
    if not Plan.objects.filter(is_active=True).exists():
        # The site is not set up yet: kept FAILED and retried once a plan exists.
        raise MarketplaceError(_("No active plan to match the marketplace payment to."))

    # A first look without locks, so an amount that buys nothing creates no account
    # (the amount a PENDING announced never changes); decided again under the locks.
    seen = Subscription.objects.select_related("plan").filter(external_id=external_id).first()
    if (seen is None or (status == ChargeStatus.PAID and seen.status == Subscription.Status.PENDING)) and _plan_paid_for(
        seen, amount_cents
    ) is None:
        _list_marketplace_amount(external_id=external_id, status=status, amount_cents=amount_cents, email=email, pending=seen, now=now)
        return None

    owner, _created = get_guest_payment_owner(email=email, name=name)
    if owner is None:
        # The e-mail's account is not confirmed: maybe a squatter's. The payment waits, unclaimed.
        _keep_marketplace_unclaimed(external_id=external_id, status=status, amount_cents=amount_cents, email=email, name=name, now=now)
        return None
    # Lock the buyer first (the one lock order: user → subscription): every change to one
    # buyer's subscriptions queues here, so two deliveries cannot both decide nothing is live.
    user = lock_user(owner.pk)
    subscription = Subscription.objects.select_for_update().select_related("plan").filter(external_id=external_id).first()

    if status == ChargeStatus.PENDING:
        if subscription is not None:
            return subscription  # PENDING after PAID (out of order) or twice: nothing changes
        plan = match_plan(amount_cents=amount_cents)
        if plan is None:
            _list_marketplace_amount(external_id=external_id, status=status, amount_cents=amount_cents, email=email, pending=None, now=now)
            return None
        return Subscription.objects.create(
            user=user,
            plan=plan,
            status=Subscription.Status.PENDING,
            external_id=external_id,
            external_amount_cents=amount_cents,
            plan_match_rule=Subscription.PlanMatch.EXACT_PRICE,
            last_reason=Subscription.Reason.CREATED,
            last_transition_at=now,
            created_at=now,
        )

    # PAID
    if subscription is not None and subscription.status != Subscription.Status.PENDING:
        return subscription  # already paid (or later revoked): a duplicate changes nothing
    plan = _plan_paid_for(subscription, amount_cents)
    if plan is None:
        _list_marketplace_amount(
            external_id=external_id, status=status, amount_cents=amount_cents, email=email, pending=subscription, now=now
        )
        return None
    duration = timedelta(days=plan.duration_days)

    live = Subscription.objects.select_for_update().live().filter(user=user).exclude(external_id=external_id).first()
    if live is not None:
        # The buyer is already subscribed: the payment extends the live subscription, by the
        # same period rule as our own checkouts; the marketplace record says so.
        if not continues(live.end_date, at=now):
            live.start_date = now  # the period rule (billing.periods): a new period, access had ended
        grant_start, live.end_date = paid_period(current_end=live.end_date, paid_at=now, start=now, days=plan.duration_days)
        set_transition(live, status=Subscription.Status.ACTIVE, reason=Subscription.Reason.RENEWED, now=now)
        live.save(update_fields=["start_date", "end_date", "status", "last_reason", "last_transition_at", "updated_at"])
        if subscription is None:
            subscription = Subscription(
                user=user, plan=plan, external_id=external_id, plan_match_rule=Subscription.PlanMatch.EXACT_PRICE, created_at=now
            )
        subscription.external_amount_cents = amount_cents
        subscription.status = Subscription.Status.CANCELED
        subscription.canceled_at = now
        subscription.cancel_reason = f"Paid on the marketplace; extended subscription {live.pk} instead."
        subscription.last_reason = Subscription.Reason.PAID
        subscription.last_transition_at = now
        subscription.save()
        _record_marketplace(live, external_id=external_id, amount_cents=amount_cents, starts_at=grant_start, now=now)
        emit_subscription_event("subscription.renewed", live, now=now)
        queue_marketplace_receipt_after_commit(
            subscription_pk=live.pk, amount_cents=amount_cents or 0, paid_at=now, transaction_id=external_id, payer_name=name or user.name, payer_email=user.email
        )
        return live

    if subscription is None:
        subscription = Subscription(
            user=user, plan=plan, external_id=external_id, plan_match_rule=Subscription.PlanMatch.EXACT_PRICE, created_at=now
        )
    subscription.external_amount_cents = amount_cents
    subscription.start_date = now
    subscription.end_date = now + duration
    set_transition(subscription, status=Subscription.Status.ACTIVE, reason=Subscription.Reason.PAID, now=now)
    subscription.save()
    _record_marketplace(subscription, external_id=external_id, amount_cents=amount_cents, starts_at=now, now=now)
    emit_subscription_event("subscription.activated", subscription, now=now)
    queue_marketplace_receipt_after_commit(
        subscription_pk=subscription.pk, amount_cents=amount_cents or 0, paid_at=now, transaction_id=external_id, payer_name=name or user.name, payer_email=user.email
    )
    return subscription


def _record_marketplace(subscription: Subscription, *, external_id: str, amount_cents: int, starts_at: datetime, now: datetime) -> None:
    """The ledger of a marketplace PAID: the money, keyed by the marketplace's id, and the days it bought."""
    ledger.write(
        ledger.record_marketplace_payment(
            subscription=subscription, external_id=external_id, amount_cents=amount_cents, now=now, save=False
        ),
        ledger.record_grant(
            subscription=subscription, starts_at=starts_at, ends_at=subscription.end_date, cause=LedgerEntry.Cause.MARKETPLACE,
            now=now, save=False,
        ),
    )
