"""
Activation: a paid checkout becomes access. The one rule for every way money
arrives (our PIX via JunglePay or the sandbox, a reconciled payment, a
marketplace postback).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.services import get_guest_payment_owner, get_or_create_customer
from billing.exceptions import MarketplaceError, TransitionNotAllowed
from billing.gateways import ChargeStatus
from billing.models import Checkout, PaymentGateway, Plan, ReconciliationItem, Subscription
from billing.services.common import cancel_open_renewals, set_transition
from billing.services.locks import lock_checkout, lock_live_subscription, lock_user
from billing.services.review import list_for_review

logger = logging.getLogger(__name__)


@transaction.atomic
def activate_checkout(
    *, checkout: Checkout, paid_at: datetime | None = None, now: datetime | None = None, claimed_by=None
) -> Subscription | None:
    """
    A paid checkout becomes access. Returns the subscription it paid.

    1. Lock the checkout. Already paid → return its subscription, change nothing.
    2. Find the owner: the checkout's user, else the account of its e-mail
       (created, with a set-password e-mail, when there is none). An account
       whose e-mail is not confirmed gets nothing: the checkout is marked paid
       and waits unclaimed (returns None) until `claim_guest_payments`.
    3. Lock the owner and their live subscription, then by purpose:
       - renewal (or a new purchase by someone already subscribed): extend
         from the current `end_date` — early payment loses no days, payment
         in grace extends from the old `end_date`;
       - upgrade: a new period on the new plan from the payment time;
       - new: a period from the payment time.
       Money is never ignored: a payment after the charge expired, or after
       the subscription ended, still opens a new period from the payment time,
       and the checkout is flagged `is_late` for the admin.
    """
    now = now or timezone.now()
    paid_at = paid_at or now
    checkout = lock_checkout(checkout)
    if checkout.status == Checkout.Status.PAID and not (claimed_by is not None and checkout.user_id is None):
        return checkout.subscription
    if checkout.status == Checkout.Status.REFUNDED:
        raise TransitionNotAllowed(_("A refunded checkout cannot be paid again."))

    late = checkout.status in (Checkout.Status.EXPIRED, Checkout.Status.FAILED, Checkout.Status.CANCELED) or bool(
        checkout.pix_expires_at and paid_at > checkout.pix_expires_at
    )

    if checkout.user_id:
        user_id = checkout.user_id
    elif claimed_by is not None:
        user_id = claimed_by.pk
    else:
        owner = get_guest_payment_owner(email=checkout.customer_email, name=checkout.customer_name)
        if owner is None:
            _keep_unclaimed(checkout, paid_at=paid_at, late=late)
            return None
        user_id = owner.pk
    user = lock_user(user_id)

    own = Subscription.objects.select_for_update().get(pk=checkout.subscription_id) if checkout.subscription_id else None
    live = own if own is not None and own.is_live else lock_live_subscription(user.pk)
    plan = checkout.plan
    duration = timedelta(days=plan.duration_days)
    grace = timedelta(days=settings.SUBSCRIPTION_GRACE_DAYS)

    if live is not None and checkout.purpose != Checkout.Purpose.UPGRADE and live.end_date and live.end_date > paid_at - grace:
        # Extension: from the current end, whatever day it is paid on (within grace).
        target = live
        target.start_date = target.start_date or paid_at
        target.end_date = target.end_date + duration
        reason = Subscription.Reason.RENEWED if plan.pk == target.plan_id else Subscription.Reason.PLAN_CHANGED
    else:
        # A new period from the payment time: first payment, upgrade, or a
        # payment that arrived after access had ended.
        target = live or own
        if checkout.purpose != Checkout.Purpose.NEW and (live is None or not (live.end_date and live.end_date > paid_at - grace)):
            late = True  # the subscription it was meant to continue had already ended
        if target is None:
            target = Subscription(user=user, plan=plan, created_at=now)
        target.start_date = paid_at
        target.end_date = paid_at + duration
        if checkout.purpose == Checkout.Purpose.UPGRADE and plan.pk != target.plan_id:
            reason = Subscription.Reason.PLAN_CHANGED
        elif checkout.purpose == Checkout.Purpose.RENEWAL:
            reason = Subscription.Reason.RENEWED
        else:
            reason = Subscription.Reason.PAID

    target.user = user
    target.plan = plan
    if target.next_plan_id == plan.pk or checkout.purpose == Checkout.Purpose.UPGRADE:
        target.next_plan = None
    target.cancel_at_period_end = False  # paying again withdraws a cancel request
    target.plan_match_rule = Subscription.PlanMatch.CHECKOUT
    set_transition(target, status=Subscription.Status.ACTIVE, reason=reason, now=now)
    target.save()

    if own is not None and own.pk != target.pk and own.status == Subscription.Status.PENDING:
        # The money went to the live subscription; the pending one never will be paid.
        set_transition(own, status=Subscription.Status.EXPIRED, reason=Subscription.Reason.NEVER_PAID, now=now)
        own.save(update_fields=["status", "last_reason", "last_transition_at", "updated_at"])
    if checkout.purpose != Checkout.Purpose.RENEWAL:
        # The period changed; a renewal charged for the old one is void.
        cancel_open_renewals(target, now=now, exclude_pk=checkout.pk)

    checkout.status = Checkout.Status.PAID
    checkout.paid_at = paid_at
    checkout.user = user
    checkout.subscription = target
    checkout.is_late = late
    checkout.save(update_fields=["status", "paid_at", "user", "subscription", "is_late", "updated_at"])
    logger.info(
        "checkout activated",
        extra={"checkout": str(checkout.public_id), "subscription_id": target.pk, "reason": reason, "late": late},
    )
    return target


def _keep_unclaimed(checkout: Checkout, *, paid_at: datetime, late: bool) -> None:
    """The money is recorded (paid, never lost); the access waits for a confirmed owner."""
    checkout.status = Checkout.Status.PAID
    checkout.paid_at = paid_at
    checkout.is_late = late
    checkout.save(update_fields=["status", "paid_at", "is_late", "updated_at"])
    logger.info("guest payment kept unclaimed: its e-mail's account is not confirmed", extra={"checkout": str(checkout.public_id)})


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
            checkout = lock_checkout(checkout)  # the lock order's first step; activate_checkout re-takes it
            if checkout.user_id is not None or checkout.status != Checkout.Status.PAID:
                continue  # claimed (or refunded) meanwhile by a concurrent call
            money_paid_at, was_late = checkout.paid_at, checkout.is_late
            subscription = activate_checkout(checkout=checkout, paid_at=now, now=now, claimed_by=user)
            # activate_checkout recorded the claim time as the payment's; the money came earlier.
            Checkout.objects.filter(pk=checkout.pk).update(paid_at=money_paid_at, is_late=was_late)
            logger.info("guest payment claimed", extra={"checkout": str(checkout.public_id), "user_id": user.pk})
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


def extends_current_period(subscription: Subscription, *, at: datetime) -> bool:
    """
    The period rule of every activation: a payment while the subscription is
    live or in grace extends it from its current `end_date` (no paid day is
    lost, none is given twice); after that, a new period starts at payment.
    """
    grace = timedelta(days=settings.SUBSCRIPTION_GRACE_DAYS)
    return bool(subscription.end_date and subscription.end_date > at - grace)


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
    list_for_review(
        gateway=PaymentGateway.objects.get(kind=PaymentGateway.Kind.DIAS),
        transaction_id=external_id,
        kind=ReconciliationItem.Kind.MARKETPLACE_AMOUNT_MISMATCH,
        detail={"status": str(status), "amount": amount_cents, "expected_amount": expected, "payer_email": email},
        amount_cents=amount_cents,
        reopen=status == ChargeStatus.PAID,  # the money itself arrived: a person looks again
        now=now,
    )
    logger.warning(
        "marketplace amount matches no plan: listed for a person",
        extra={"external_id": external_id, "amount": amount_cents, "expected": expected},
    )


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
    ReconciliationItem is written, for a person to look at.
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

    user, _created = get_or_create_customer(email=email, name=name)
    # Lock the buyer first (the one lock order: user → subscription): every change to one
    # buyer's subscriptions queues here, so two deliveries cannot both decide nothing is live.
    user = lock_user(user.pk)
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
        if extends_current_period(live, at=now):
            live.end_date = live.end_date + duration
        else:
            live.start_date = now
            live.end_date = now + duration
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
    return subscription
