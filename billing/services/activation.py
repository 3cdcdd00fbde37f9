"""
Activation: a paid checkout becomes access. The one rule for every way money
arrives (our PIX via JunglePay or the sandbox, a reconciled payment, a
marketplace postback).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F, Func
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.services import get_guest_payment_owner, get_or_create_customer
from billing.exceptions import MarketplaceError, TransitionNotAllowed
from billing.gateways import ChargeStatus
from billing.models import Checkout, Plan, Subscription
from billing.services.common import cancel_open_renewals, set_transition
from billing.services.locks import lock_checkout, lock_live_subscription, lock_user

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
# id (`external_id`, unique in the database); PAID activates it, creating it
# first when PENDING never came.
# ---------------------------------------------------------------------------


def match_plan(*, amount_cents: int | None) -> tuple[Plan, str]:
    """The plan a marketplace payment bought, and the rule that matched it."""
    if amount_cents is None:
        raise MarketplaceError(_("The marketplace payment has no amount."))
    active = Plan.objects.filter(is_active=True)
    plan = active.filter(price_cents=amount_cents).order_by("display_order", "pk").first()
    if plan is not None:
        return plan, Subscription.PlanMatch.EXACT_PRICE
    plan = (
        active.annotate(distance=Func(F("price_cents") - amount_cents, function="ABS"))
        .order_by("distance", "price_cents", "pk")
        .first()
    )
    if plan is None:
        raise MarketplaceError(_("No active plan to match the marketplace payment to."))
    logger.warning("marketplace plan matched by nearest price", extra={"amount": amount_cents, "plan": plan.pk})
    return plan, Subscription.PlanMatch.NEAREST_PRICE


@transaction.atomic
def record_marketplace_payment(
    *, external_id: str, status: ChargeStatus, amount_cents: int | None, email: str, name: str = "", now=None
) -> Subscription:
    """
    Apply one marketplace event; idempotent (the same event twice changes
    nothing) and safe under concurrent deliveries: the buyer's row and the
    subscription row are locked before anything is read to decide.
    """
    now = now or timezone.now()
    if not external_id:
        raise MarketplaceError(_("The marketplace payment has no transaction id."))
    if not email:
        raise MarketplaceError(_("The marketplace payment has no payer e-mail."))
    if status not in (ChargeStatus.PENDING, ChargeStatus.PAID):
        raise MarketplaceError(_("Unknown marketplace status."))

    plan, rule = match_plan(amount_cents=amount_cents)
    user, _created = get_or_create_customer(email=email, name=name)
    # Lock the buyer first: every change to one buyer's subscriptions queues here, so two
    # deliveries (or two different payments) cannot both decide there is nothing live yet.
    get_user_model().objects.select_for_update().filter(pk=user.pk).first()
    subscription = Subscription.objects.select_for_update().filter(external_id=external_id).first()

    if status == ChargeStatus.PENDING:
        if subscription is not None:
            return subscription  # PENDING after PAID (out of order) or twice: nothing changes
        return Subscription.objects.create(
            user=user,
            plan=plan,
            status=Subscription.Status.PENDING,
            external_id=external_id,
            plan_match_rule=rule,
            last_reason=Subscription.Reason.CREATED,
            last_transition_at=now,
            created_at=now,
        )

    # PAID
    if subscription is not None and subscription.status != Subscription.Status.PENDING:
        return subscription  # already paid (or later revoked): a duplicate changes nothing

    live = Subscription.objects.select_for_update().live().filter(user=user).exclude(external_id=external_id).first()
    if live is not None:
        # The buyer is already subscribed: the payment extends the live subscription from its
        # end date (no days lost, like an early renewal); the marketplace record says so.
        live.end_date = max(live.end_date or now, now) + timedelta(days=plan.duration_days)
        live.status = Subscription.Status.ACTIVE
        live.last_reason = Subscription.Reason.RENEWED
        live.last_transition_at = now
        live.save(update_fields=["end_date", "status", "last_reason", "last_transition_at", "updated_at"])
        if subscription is None:
            subscription = Subscription(user=user, plan=plan, external_id=external_id, plan_match_rule=rule, created_at=now)
        subscription.status = Subscription.Status.CANCELED
        subscription.canceled_at = now
        subscription.cancel_reason = f"Paid on the marketplace; extended subscription {live.pk} instead."
        subscription.last_reason = Subscription.Reason.PAID
        subscription.last_transition_at = now
        subscription.save()
        return live

    if subscription is None:
        subscription = Subscription(user=user, plan=plan, external_id=external_id, plan_match_rule=rule, created_at=now)
    subscription.status = Subscription.Status.ACTIVE
    subscription.start_date = now
    subscription.end_date = now + timedelta(days=subscription.plan.duration_days if subscription.plan_id else plan.duration_days)
    subscription.last_reason = Subscription.Reason.PAID
    subscription.last_transition_at = now
    subscription.save()
    return subscription
