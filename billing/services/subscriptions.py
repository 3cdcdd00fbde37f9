"""Subscriptions: cancel, expire, extend, the admin's activation, plan changes and proration."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from billing import ledger
from billing.checkout_status import update_checkouts
from billing.exceptions import InvalidInput, TransitionNotAllowed
from billing.ledger_models import LedgerEntry
from billing.models import Checkout, Plan, Subscription
from billing.notifications import queue_cancellation_email, queue_expiry_email
from billing.services.activation import activate_checkout
from billing.services.checkouts import create_checkout
from billing.services.common import cancel_open_renewals, set_transition, void_open_charges
from billing.services.erasure import is_erased_email
from billing.services.locks import lock_live_subscription, lock_subscription
from billing.services.outbox import emit_subscription_event
from billing.services.proration import last_paid_checkout, upgrade_credit_cents


def _require_live(subscription: Subscription) -> None:
    if not subscription.is_live:
        raise TransitionNotAllowed(_("This subscription is not active."), code="not_live")


def _require_not_erased(subscription: Subscription) -> None:
    """No days for a deleted account (contract §9.8): its money is listed for a person, never granted."""
    if is_erased_email(subscription.user.email):
        raise TransitionNotAllowed(_("This account was deleted: it cannot be given days."), code="account_deleted")


@transaction.atomic
def cancel_subscription(*, subscription: Subscription, reason: str = "", now: datetime | None = None) -> Subscription:
    """
    The user's cancel: access stays until `end_date`, no renewal is charged,
    and the sweep closes it (`canceled`) at the end of the period. Idempotent.
    """
    now = now or timezone.now()
    subscription = lock_subscription(subscription)
    _require_live(subscription)
    if subscription.cancel_at_period_end:
        return subscription
    subscription.cancel_at_period_end = True
    subscription.cancel_reason = (reason or "").strip()[:2000]
    subscription.canceled_at = now
    subscription.next_plan = None
    subscription.last_reason = Subscription.Reason.CANCELED_BY_USER
    subscription.last_transition_at = now
    subscription.save()
    cancel_open_renewals(subscription, now=now)
    # Announced when decided (access stays until end_date, `cancel_at_period_end` says so);
    # the sweep's move to `canceled` at the end of the period sends nothing more.
    emit_subscription_event("subscription.canceled", subscription, now=now)
    queue_cancellation_email(subscription, immediate=False)
    return subscription


@transaction.atomic
def cancel_subscription_now(
    *, subscription: Subscription, reason: str = "", actor=None, now: datetime | None = None
) -> Subscription:
    """The admin's cancel: access ends at once (the ledger records who, `actor`, and why, `reason`)."""
    now = now or timezone.now()
    subscription = lock_subscription(subscription)
    if subscription.status == Subscription.Status.CANCELED:
        return subscription
    if subscription.status not in (*Subscription.LIVE_STATUSES, Subscription.Status.PENDING):
        raise TransitionNotAllowed(_("Only a live or pending subscription can be canceled."))
    had_access = subscription.is_live  # a pending one never had anything to lose: no e-mail about it
    subscription.canceled_at = now
    if reason:
        subscription.cancel_reason = reason[:2000]
    set_transition(subscription, status=Subscription.Status.CANCELED, reason=Subscription.Reason.CANCELED_BY_ADMIN, now=now)
    subscription.save()
    ledger.record_revoke(
        subscription=subscription, starts_at=now, ends_at=subscription.end_date, cause=LedgerEntry.Cause.ADMIN_CANCEL,
        actor=actor, note=reason, now=now,
    )
    void_open_charges(subscription, now=now)
    emit_subscription_event("subscription.canceled", subscription, now=now)
    if had_access:
        queue_cancellation_email(subscription, immediate=True)
    return subscription


@transaction.atomic
def expire_subscription(
    *, subscription: Subscription, reason: str = "", actor=None, now: datetime | None = None
) -> Subscription:
    """The admin's expire: access ends at once, recorded as an admin decision (who, `actor`; why, `reason`)."""
    now = now or timezone.now()
    subscription = lock_subscription(subscription)
    if subscription.status == Subscription.Status.EXPIRED:
        return subscription
    if subscription.status not in (*Subscription.LIVE_STATUSES, Subscription.Status.PENDING):
        raise TransitionNotAllowed(_("Only a live or pending subscription can be expired."))
    had_access = subscription.is_live  # a pending one never had anything to lose: no e-mail about it
    set_transition(subscription, status=Subscription.Status.EXPIRED, reason=Subscription.Reason.EXPIRED_BY_ADMIN, now=now)
    subscription.save()
    ledger.record_revoke(
        subscription=subscription, starts_at=now, ends_at=subscription.end_date, cause=LedgerEntry.Cause.ADMIN_EXPIRE,
        actor=actor, note=reason, now=now,
    )
    void_open_charges(subscription, now=now)
    emit_subscription_event("subscription.expired", subscription, now=now)
    if had_access:
        queue_expiry_email(subscription)
    return subscription


@transaction.atomic
def activate_subscription(
    *, subscription: Subscription, reason: str = "", actor=None, now: datetime | None = None
) -> Subscription:
    """
    The admin grants a period of the subscription's plan from now (a payment
    made outside the system, a courtesy). A live subscription is left as is.
    The ledger records the days as the admin's (who, `actor`; why, `reason`).
    """
    now = now or timezone.now()
    subscription = lock_subscription(subscription)
    if subscription.is_live:
        return subscription
    _require_not_erased(subscription)
    other = lock_live_subscription(subscription.user_id)
    if other is not None:
        raise TransitionNotAllowed(_("This user already has a live subscription (#%(pk)s).") % {"pk": other.pk})
    subscription.start_date = now
    subscription.end_date = now + timedelta(days=subscription.plan.duration_days)
    subscription.cancel_at_period_end = False
    subscription.plan_match_rule = Subscription.PlanMatch.ADMIN
    set_transition(subscription, status=Subscription.Status.ACTIVE, reason=Subscription.Reason.ACTIVATED_BY_ADMIN, now=now)
    subscription.save()
    ledger.record_grant(
        subscription=subscription, starts_at=now, ends_at=subscription.end_date, cause=LedgerEntry.Cause.ADMIN_ACTIVATE,
        actor=actor, note=reason, now=now,
    )
    emit_subscription_event("subscription.activated", subscription, now=now)
    return subscription


@transaction.atomic
def extend_subscription(
    *, subscription: Subscription, days: int, reason: str = "", actor=None, now: datetime | None = None
) -> Subscription:
    """The admin adds days to a live subscription's period (back to active if in grace); the ledger says who and why."""
    if int(days) <= 0:
        raise InvalidInput("days", _("Enter a positive number of days."))
    now = now or timezone.now()
    subscription = lock_subscription(subscription)
    _require_live(subscription)
    _require_not_erased(subscription)
    extended_from = subscription.end_date
    subscription.end_date = subscription.end_date + timedelta(days=int(days))
    status = Subscription.Status.ACTIVE if subscription.end_date > now else subscription.status
    set_transition(subscription, status=status, reason=Subscription.Reason.EXTENDED_BY_ADMIN, now=now)
    subscription.save()
    ledger.record_grant(
        subscription=subscription, starts_at=extended_from, ends_at=subscription.end_date, cause=LedgerEntry.Cause.ADMIN_EXTEND,
        actor=actor, note=reason, now=now,
    )
    return subscription


@dataclass
class PlanChange:
    kind: str  # "upgrade" | "downgrade" | "unchanged"
    subscription: Subscription
    checkout: Checkout | None = None


# A pending upgrade charge is reused for a repeated request within this window;
# after it, the credit has shrunk and a fresh charge is issued.
UPGRADE_REUSE_WINDOW = timedelta(hours=1)


@transaction.atomic
def change_plan(*, subscription: Subscription, plan: Plan, now: datetime | None = None) -> PlanChange:
    """
    Upgrade (a dearer plan): a checkout for the new price minus the unused
    value of the current period; paying it starts a new period on the new
    plan. Downgrade (a cheaper or equal plan): scheduled in `next_plan` and
    applied when the subscription renews. Choosing the current plan drops a
    scheduled downgrade.
    """
    now = now or timezone.now()
    subscription = lock_subscription(subscription)
    _require_live(subscription)
    plan = Plan.objects.get(pk=plan.pk)
    if not plan.is_active:
        raise InvalidInput("plan_id", _("This plan is not available."), code="plan_unavailable")

    if plan.pk == subscription.plan_id:
        if subscription.next_plan_id is None:
            return PlanChange("unchanged", subscription)
        subscription.next_plan = None
        _reissue_renewal(subscription, now=now)
        return PlanChange("unchanged", subscription)

    if plan.price_cents <= subscription.plan.price_cents:
        if subscription.next_plan_id != plan.pk:
            subscription.next_plan = plan
            _reissue_renewal(subscription, now=now)
        return PlanChange("downgrade", subscription)

    open_upgrades = Checkout.objects.filter(  # locked with the subscription (services.locks)
        subscription=subscription, purpose=Checkout.Purpose.UPGRADE, status=Checkout.Status.PENDING
    )
    reusable = open_upgrades.filter(plan=plan, created_at__gte=now - UPGRADE_REUSE_WINDOW).first()
    if reusable is not None:
        return PlanChange("upgrade", subscription, reusable)
    update_checkouts(open_upgrades, status=Checkout.Status.CANCELED, updated_at=now)

    user = subscription.user
    last = last_paid_checkout(subscription)
    checkout = create_checkout(
        plan=plan,
        customer_name=(last.customer_name if last else "") or user.name or user.email,
        customer_email=user.email,
        customer_document=last.customer_document if last else "",
        customer_phone=last.customer_phone if last else "",
        payment_method=Checkout.Method.PIX if plan.accepts_pix else Checkout.Method.CARD,
        user=user,
        purpose=Checkout.Purpose.UPGRADE,
        subscription=subscription,
        credit_cents=upgrade_credit_cents(subscription=subscription, now=now),
        now=now,
    )
    if checkout.total_cents == 0:
        # Nothing to charge (the unused credit covers the new price): switch now.
        subscription = activate_checkout(checkout=checkout, now=now)
        checkout.refresh_from_db()
    return PlanChange("upgrade", subscription, checkout)


def _reissue_renewal(subscription: Subscription, *, now: datetime) -> None:
    """A renewal already issued at the old price is void; the sweep issues the right one."""
    subscription.renewal_issued_for = None
    subscription.save(update_fields=["next_plan", "renewal_issued_for", "updated_at"])
    cancel_open_renewals(subscription, now=now)
