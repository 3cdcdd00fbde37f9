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

from accounts.services import get_or_create_customer
from billing.exceptions import MarketplaceError, TransitionNotAllowed
from billing.gateways import ChargeStatus
from billing.models import Checkout, Plan, ReconciliationItem, Subscription
from billing.services.common import cancel_open_renewals, set_transition
from billing.services.locks import lock_checkout
from billing.services.proration import credit_adjustment

logger = logging.getLogger(__name__)


@transaction.atomic
def activate_checkout(*, checkout: Checkout, paid_at: datetime | None = None, now: datetime | None = None) -> Subscription | None:
    """
    A paid checkout becomes access. Returns the subscription it paid.

    1. Find the owner: the checkout's user, else the account of its e-mail
       (created, with a set-password e-mail, when there is none).
    2. Lock the owner, their subscriptions, then the checkout (services.locks).
       Already paid → return its subscription, change nothing.
    3. A void charge (is_void_charge: an upgrade we superseded, a renewal of a
       plan the subscription left, any charge of a subscription a refund or
       an admin ended) is kept (paid, `is_late`) and listed for a person
       (ReconciliationItem `voided_charge_paid`); it changes no access.
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
    if user_id is None and seen.status not in (Checkout.Status.PAID, Checkout.Status.REFUNDED):
        # A guest checkout: its account is resolved before any lock is taken (the lock order).
        user_id = get_or_create_customer(email=seen.customer_email, name=seen.customer_name)[0].pk
    locks = lock_checkout(seen, user_id=user_id)
    checkout, user, own, live = locks.checkout, locks.user, locks.own, locks.live
    if checkout.status == Checkout.Status.PAID:
        return checkout.subscription
    if checkout.status == Checkout.Status.REFUNDED:
        raise TransitionNotAllowed(_("A refunded checkout cannot be paid again."))

    if is_void_charge(checkout, own):
        _keep_for_a_person(checkout, user=user, paid_at=paid_at, now=now)
        return own

    late = checkout.status in (Checkout.Status.EXPIRED, Checkout.Status.FAILED, Checkout.Status.CANCELED) or bool(
        checkout.pix_expires_at and paid_at > checkout.pix_expires_at
    )
    start = max(paid_at, now)
    plan = checkout.plan
    duration = timedelta(days=checkout.plan_duration_days)
    grace = timedelta(days=settings.SUBSCRIPTION_GRACE_DAYS)
    in_time = live is not None and live.end_date is not None and live.end_date > paid_at - grace

    if in_time and checkout.purpose != Checkout.Purpose.UPGRADE:
        # Extension: from the current end, whatever day it is paid on (within grace).
        target = live
        target.start_date = target.start_date or start
        target.end_date = target.end_date + duration
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
        target.start_date = start
        target.end_date = max(end, start + timedelta(seconds=1))  # the period's CheckConstraint: end after start
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


ENDED_BY_DECISION = (Subscription.Reason.REFUNDED, Subscription.Reason.CANCELED_BY_ADMIN, Subscription.Reason.EXPIRED_BY_ADMIN)


def is_void_charge(checkout: Checkout, subscription: Subscription | None) -> bool:
    """
    A charge whose payment must not become access by itself: any renewal or
    upgrade of a subscription a refund or an admin ended; an upgrade we
    canceled (superseded by a later one); a renewal we canceled for a plan the
    subscription is no longer on (an upgrade re-based the period). A renewal
    canceled by the user's own cancel stays payable: paying it is the user
    choosing to continue.
    """
    if checkout.purpose == Checkout.Purpose.NEW or subscription is None:
        return False
    ended = subscription.status in (Subscription.Status.REFUNDED, Subscription.Status.CANCELED, Subscription.Status.EXPIRED)
    if ended and subscription.last_reason in ENDED_BY_DECISION:
        return True
    if checkout.status != Checkout.Status.CANCELED:
        return False
    return checkout.purpose == Checkout.Purpose.UPGRADE or checkout.plan_id != subscription.plan_id


def _keep_for_a_person(checkout: Checkout, *, user, paid_at: datetime, now: datetime) -> None:
    """
    The money is recorded (paid, late) and listed; access is a person's
    decision (refund or extend). The checkout is detached from the
    subscription (kept in the item's detail): it paid for no period of it, so
    refunding it later must not revoke a period other money paid for.
    """
    subscription_id = checkout.subscription_id
    checkout.status = Checkout.Status.PAID
    checkout.paid_at = paid_at
    checkout.user = user
    checkout.subscription = None
    checkout.is_late = True
    checkout.save(update_fields=["status", "paid_at", "user", "subscription", "is_late", "updated_at"])
    if checkout.gateway_id:
        ReconciliationItem.objects.get_or_create(
            gateway_id=checkout.gateway_id,
            transaction_id=checkout.gateway_transaction_id or str(checkout.public_id),
            kind=ReconciliationItem.Kind.VOIDED_CHARGE_PAID,
            defaults={
                "checkout": checkout,
                "detail": {"checkout_total": checkout.total_cents, "subscription_id": subscription_id, "purpose": checkout.purpose},
                "found_at": now,
            },
        )
    logger.warning("void charge paid: kept for a person", extra={"checkout": str(checkout.public_id)})


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
