"""
Every billing state change lives here: checkouts, subscriptions and their
lifecycle (contract §8). Views, admin actions, webhooks, commands and tasks
are doors that call these functions; none of them changes a status itself.

Rules every function follows:

- keyword-only arguments, one `now` read at the top (tests pass it);
- one transaction, rows locked with `select_for_update` before they are read
  and modified, always in the order checkout → user → subscription so two
  flows never wait on each other in opposite orders;
- idempotent: repeating a call (a duplicate webhook, a double click) changes
  nothing the second time;
- side effects (e-mail) only after commit.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from billing.models import Checkout, OrderBump, Plan, Subscription
from config.api_errors import DomainError

logger = logging.getLogger(__name__)

SECONDS_PER_DAY = 24 * 60 * 60
# An unpaid first checkout without a PIX expiry is abandoned after this long.
STALE_CHECKOUT_AGE = timedelta(days=1)


class TransitionNotAllowed(DomainError):
    code = "transition_not_allowed"
    status_code = 409


# ---------------------------------------------------------------------------
# Checkouts
# ---------------------------------------------------------------------------


def _digits(value: str) -> str:
    return "".join(ch for ch in (value or "") if ch.isdigit())


def _invalid(field_name: str, message: str, *, code: str = "invalid") -> DomainError:
    return DomainError(message, code=code, fields={field_name: [message]})


@transaction.atomic
def create_checkout(
    *,
    plan: Plan,
    customer_name: str,
    customer_email: str,
    customer_document: str = "",
    customer_phone: str = "",
    order_bump_ids=(),
    payment_method: str = Checkout.Method.PIX,
    user=None,
    purpose: str = Checkout.Purpose.NEW,
    subscription: Subscription | None = None,
    credit_cents: int = 0,
    now: datetime | None = None,
) -> Checkout:
    """
    A pending checkout whose totals are computed here, never taken from the
    client: total = plan price + active order bumps - credit (upgrades).

    `items` snapshots what is sold, as sent to the gateway; its lines add up
    to `total_cents`. A NEW checkout of a known user without a live
    subscription opens a `pending` subscription (contract §8), which ends
    `expired`/`never_paid` if the charge is never paid.
    """
    now = now or timezone.now()
    plan = Plan.objects.get(pk=plan.pk)  # fresh: the price is read from the database, not a stale instance
    if purpose not in Checkout.Purpose.values:
        raise _invalid("purpose", _("Unknown checkout purpose."))
    # A renewal may continue a plan that is no longer sold; new sales and upgrades may not.
    if purpose != Checkout.Purpose.RENEWAL and not plan.is_active:
        raise _invalid("plan_id", _("This plan is not available."), code="plan_unavailable")
    if payment_method not in Checkout.Method.values or not plan.accepts(payment_method):
        raise _invalid("payment_method", _("This plan does not accept this payment method."), code="method_not_accepted")
    if purpose != Checkout.Purpose.NEW and subscription is None:
        raise _invalid("subscription", _("A renewal or upgrade needs the subscription it continues."))
    customer_name = (customer_name or "").strip()
    customer_email = (customer_email or "").strip().lower()
    if not customer_name:
        raise _invalid("name", _("Enter your name."))
    if not customer_email or "@" not in customer_email:
        raise _invalid("email", _("Enter a valid e-mail address."))

    bump_ids = sorted({int(pk) for pk in order_bump_ids or ()})
    bumps = list(OrderBump.objects.filter(pk__in=bump_ids, is_active=True).order_by("display_order", "pk"))
    if len(bumps) != len(bump_ids):
        raise _invalid("order_bump_ids", _("One of the chosen extras is not available."), code="bump_unavailable")

    plan_price_cents = plan.price_cents
    bumps_cents = sum(bump.price_cents for bump in bumps)
    # Credit only ever lowers the plan line, and never below zero.
    credit_cents = max(0, min(int(credit_cents), plan_price_cents))
    total_cents = plan_price_cents + bumps_cents - credit_cents

    plan_title = plan.name
    if purpose == Checkout.Purpose.RENEWAL:
        plan_title = _("%(plan)s (renewal)") % {"plan": plan.name}
    elif purpose == Checkout.Purpose.UPGRADE:
        plan_title = _("%(plan)s (upgrade, prorated)") % {"plan": plan.name}
    items = [{"title": str(plan_title), "unit_price_cents": plan_price_cents - credit_cents, "quantity": 1}]
    items += [{"title": bump.name, "unit_price_cents": bump.price_cents, "quantity": 1} for bump in bumps]

    if user is not None and purpose == Checkout.Purpose.NEW and subscription is None:
        has_live = Subscription.objects.live().filter(user=user).exists()
        if not has_live:
            subscription = Subscription.objects.create(
                user=user, plan=plan, status=Subscription.Status.PENDING, last_transition_at=now, created_at=now
            )

    checkout = Checkout.objects.create(
        user=user,
        plan=plan,
        purpose=purpose,
        subscription=subscription,
        payment_method=payment_method,
        plan_price_cents=plan_price_cents,
        bumps_cents=bumps_cents,
        credit_cents=credit_cents,
        total_cents=total_cents,
        items=items,
        customer_name=customer_name[:150],
        customer_email=customer_email,
        customer_document=_digits(customer_document),
        customer_phone=_digits(customer_phone)[:20],
        created_at=now,
    )
    if bumps:
        checkout.order_bumps.set(bumps)
    return checkout


def _lock_checkout(checkout: Checkout) -> Checkout:
    return Checkout.objects.select_for_update().get(pk=checkout.pk)


def _lock_user(user_id: int):
    # Serialises every activation of one user, so two payments landing at the
    # same moment cannot both open a live subscription.
    return get_user_model().objects.select_for_update().get(pk=user_id)


def _live_subscription(user_id: int) -> Subscription | None:
    return Subscription.objects.select_for_update().live().filter(user_id=user_id).first()


def _set_transition(subscription: Subscription, *, status: str, reason: str, now: datetime) -> None:
    subscription.status = status
    subscription.last_reason = reason
    subscription.last_transition_at = now


def _cancel_open_renewals(subscription: Subscription, *, now: datetime, exclude_pk: int | None = None) -> int:
    qs = Checkout.objects.filter(
        subscription=subscription, purpose=Checkout.Purpose.RENEWAL, status=Checkout.Status.PENDING
    )
    if exclude_pk:
        qs = qs.exclude(pk=exclude_pk)
    return qs.update(status=Checkout.Status.CANCELED, updated_at=now)


@transaction.atomic
def activate_checkout(*, checkout: Checkout, paid_at: datetime | None = None, now: datetime | None = None) -> Subscription:
    """
    A paid checkout becomes access. Returns the subscription it paid.

    1. Lock the checkout. Already paid → return its subscription, change nothing.
    2. Find the owner: the checkout's user, else the account of its e-mail
       (created, with a set-password e-mail, when there is none).
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
    checkout = _lock_checkout(checkout)
    if checkout.status == Checkout.Status.PAID:
        return checkout.subscription
    if checkout.status == Checkout.Status.REFUNDED:
        raise TransitionNotAllowed(_("A refunded checkout cannot be paid again."))

    late = checkout.status in (Checkout.Status.EXPIRED, Checkout.Status.FAILED, Checkout.Status.CANCELED) or bool(
        checkout.pix_expires_at and paid_at > checkout.pix_expires_at
    )

    if checkout.user_id:
        user_id = checkout.user_id
    else:
        from accounts.services import get_or_create_customer

        user_id = get_or_create_customer(email=checkout.customer_email, name=checkout.customer_name)[0].pk
    user = _lock_user(user_id)

    own = Subscription.objects.select_for_update().get(pk=checkout.subscription_id) if checkout.subscription_id else None
    live = own if own is not None and own.is_live else _live_subscription(user.pk)
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
    _set_transition(target, status=Subscription.Status.ACTIVE, reason=reason, now=now)
    target.save()

    if own is not None and own.pk != target.pk and own.status == Subscription.Status.PENDING:
        # The money went to the live subscription; the pending one never will be paid.
        _set_transition(own, status=Subscription.Status.EXPIRED, reason=Subscription.Reason.NEVER_PAID, now=now)
        own.save(update_fields=["status", "last_reason", "last_transition_at", "updated_at"])
    if checkout.purpose != Checkout.Purpose.RENEWAL:
        # The period changed; a renewal charged for the old one is void.
        _cancel_open_renewals(target, now=now, exclude_pk=checkout.pk)

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


@transaction.atomic
def refund_checkout(*, checkout: Checkout, now: datetime | None = None) -> Checkout:
    """Refund, chargeback or PIX dispute (MED): the money is gone, so is access, at once."""
    now = now or timezone.now()
    checkout = _lock_checkout(checkout)
    if checkout.status == Checkout.Status.REFUNDED:
        return checkout
    if checkout.status != Checkout.Status.PAID:
        raise TransitionNotAllowed(_("Only a paid checkout can be refunded."))
    checkout.status = Checkout.Status.REFUNDED
    checkout.save(update_fields=["status", "updated_at"])
    if checkout.subscription_id:
        subscription = Subscription.objects.select_for_update().get(pk=checkout.subscription_id)
        if subscription.status != Subscription.Status.REFUNDED:
            _set_transition(subscription, status=Subscription.Status.REFUNDED, reason=Subscription.Reason.REFUNDED, now=now)
            subscription.save()
        _cancel_open_renewals(subscription, now=now)
    logger.info("checkout refunded", extra={"checkout": str(checkout.public_id)})
    return checkout


FAIL_STATUSES = (Checkout.Status.FAILED, Checkout.Status.EXPIRED, Checkout.Status.CANCELED)


@transaction.atomic
def fail_checkout(*, checkout: Checkout, status: str, now: datetime | None = None) -> Checkout:
    """
    A pending checkout that will not be paid: failed, expired or canceled.
    Never moves a checkout that is not pending (a paid one above all). A NEW
    checkout's pending subscription ends `expired`/`never_paid`, so the user can
    check out again; a failed renewal charge lets the sweep issue a fresh one.
    """
    if status not in FAIL_STATUSES:
        raise ValueError(f"not a failure status: {status!r}")
    now = now or timezone.now()
    checkout = _lock_checkout(checkout)
    if checkout.status != Checkout.Status.PENDING:
        return checkout
    checkout.status = status
    checkout.save(update_fields=["status", "updated_at"])
    if checkout.subscription_id:
        subscription = Subscription.objects.select_for_update().get(pk=checkout.subscription_id)
        if checkout.purpose == Checkout.Purpose.NEW and subscription.status == Subscription.Status.PENDING:
            _set_transition(subscription, status=Subscription.Status.EXPIRED, reason=Subscription.Reason.NEVER_PAID, now=now)
            subscription.save(update_fields=["status", "last_reason", "last_transition_at", "updated_at"])
        elif checkout.purpose == Checkout.Purpose.RENEWAL and subscription.is_live:
            subscription.renewal_issued_for = None
            subscription.save(update_fields=["renewal_issued_for", "updated_at"])
    return checkout
