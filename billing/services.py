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
from django.db.models import Exists, F, OuterRef, Q, Subquery
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from accounts.language import languages_for_emails
from billing.models import Checkout, OrderBump, PaymentGateway, Plan, Subscription
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


# ---------------------------------------------------------------------------
# Subscriptions: cancel, plan change, admin actions
# ---------------------------------------------------------------------------


def _lock_subscription(subscription: Subscription, *, lock_user: bool = False) -> Subscription:
    # Open renewal charges first, then (the user and) the subscription: the
    # same order as activate_checkout (checkout → user → subscription), so
    # the two never wait on each other in opposite orders.
    list(
        Checkout.objects.select_for_update()
        .filter(subscription_id=subscription.pk, purpose=Checkout.Purpose.RENEWAL, status=Checkout.Status.PENDING)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if lock_user:
        _lock_user(subscription.user_id)
    return Subscription.objects.select_for_update().get(pk=subscription.pk)


def _require_live(subscription: Subscription) -> None:
    if not subscription.is_live:
        raise TransitionNotAllowed(_("This subscription is not active."), code="not_live")


@transaction.atomic
def cancel_subscription(*, subscription: Subscription, reason: str = "", now: datetime | None = None) -> Subscription:
    """
    The user's cancel: access stays until `end_date`, no renewal is charged,
    and the sweep closes it (`canceled`) at the end of the period. Idempotent.
    """
    now = now or timezone.now()
    subscription = _lock_subscription(subscription)
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
    _cancel_open_renewals(subscription, now=now)
    return subscription


@transaction.atomic
def cancel_subscription_now(*, subscription: Subscription, reason: str = "", now: datetime | None = None) -> Subscription:
    """The admin's cancel: access ends at once."""
    now = now or timezone.now()
    subscription = _lock_subscription(subscription)
    if subscription.status == Subscription.Status.CANCELED:
        return subscription
    if subscription.status not in (*Subscription.LIVE_STATUSES, Subscription.Status.PENDING):
        raise TransitionNotAllowed(_("Only a live or pending subscription can be canceled."))
    subscription.canceled_at = now
    if reason:
        subscription.cancel_reason = reason[:2000]
    _set_transition(subscription, status=Subscription.Status.CANCELED, reason=Subscription.Reason.CANCELED_BY_ADMIN, now=now)
    subscription.save()
    _cancel_open_renewals(subscription, now=now)
    return subscription


@transaction.atomic
def expire_subscription(*, subscription: Subscription, now: datetime | None = None) -> Subscription:
    """The admin's expire: access ends at once, recorded as an admin decision."""
    now = now or timezone.now()
    subscription = _lock_subscription(subscription)
    if subscription.status == Subscription.Status.EXPIRED:
        return subscription
    if subscription.status not in (*Subscription.LIVE_STATUSES, Subscription.Status.PENDING):
        raise TransitionNotAllowed(_("Only a live or pending subscription can be expired."))
    _set_transition(subscription, status=Subscription.Status.EXPIRED, reason=Subscription.Reason.EXPIRED_BY_ADMIN, now=now)
    subscription.save()
    _cancel_open_renewals(subscription, now=now)
    return subscription


@transaction.atomic
def activate_subscription(*, subscription: Subscription, now: datetime | None = None) -> Subscription:
    """
    The admin grants a period of the subscription's plan from now (a payment
    made outside the system, a courtesy). A live subscription is left as is.
    """
    now = now or timezone.now()
    subscription = _lock_subscription(subscription, lock_user=True)
    if subscription.is_live:
        return subscription
    other = _live_subscription(subscription.user_id)
    if other is not None:
        raise TransitionNotAllowed(_("This user already has a live subscription (#%(pk)s).") % {"pk": other.pk})
    subscription.start_date = now
    subscription.end_date = now + timedelta(days=subscription.plan.duration_days)
    subscription.cancel_at_period_end = False
    subscription.plan_match_rule = Subscription.PlanMatch.ADMIN
    _set_transition(subscription, status=Subscription.Status.ACTIVE, reason=Subscription.Reason.ACTIVATED_BY_ADMIN, now=now)
    subscription.save()
    return subscription


@transaction.atomic
def extend_subscription(*, subscription: Subscription, days: int, now: datetime | None = None) -> Subscription:
    """The admin adds days to a live subscription's period (back to active if in grace)."""
    if int(days) <= 0:
        raise DomainError(_("Enter a positive number of days."), fields={"days": [_("Must be positive.")]})
    now = now or timezone.now()
    subscription = _lock_subscription(subscription)
    _require_live(subscription)
    subscription.end_date = subscription.end_date + timedelta(days=int(days))
    status = Subscription.Status.ACTIVE if subscription.end_date > now else subscription.status
    _set_transition(subscription, status=status, reason=Subscription.Reason.EXTENDED_BY_ADMIN, now=now)
    subscription.save()
    return subscription


def upgrade_credit_cents(*, subscription: Subscription, now: datetime) -> int:
    """
    The unused value of the current period, in cents: the plan's price times
    the share of its duration still ahead, pro rata by seconds, with one
    rounding step (half up) at the end — integer math throughout.

    Worked example (tests/billing/test_services_plan_change.py): R$ 29,90 for
    30 days with 10 used → 2990 × 20/30 = 1993.33… → 1993 cents of credit.
    """
    if not subscription.end_date or subscription.end_date <= now:
        return 0
    remaining = int((subscription.end_date - now).total_seconds())
    period = subscription.plan.duration_days * SECONDS_PER_DAY
    price = subscription.plan.price_cents
    return (2 * price * remaining + period) // (2 * period)


@dataclass
class PlanChange:
    kind: str  # "upgrade" | "downgrade" | "unchanged"
    subscription: Subscription
    checkout: Checkout | None = None


def _last_paid_checkout(subscription: Subscription) -> Checkout | None:
    return (
        Checkout.objects.filter(subscription=subscription, status=Checkout.Status.PAID).order_by("-paid_at", "-pk").first()
    )


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
    subscription = _lock_subscription(subscription)
    _require_live(subscription)
    plan = Plan.objects.get(pk=plan.pk)
    if not plan.is_active:
        raise _invalid("plan_id", _("This plan is not available."), code="plan_unavailable")

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

    open_upgrades = Checkout.objects.select_for_update().filter(
        subscription=subscription, purpose=Checkout.Purpose.UPGRADE, status=Checkout.Status.PENDING
    )
    reusable = open_upgrades.filter(plan=plan, created_at__gte=now - UPGRADE_REUSE_WINDOW).first()
    if reusable is not None:
        return PlanChange("upgrade", subscription, reusable)
    open_upgrades.update(status=Checkout.Status.CANCELED, updated_at=now)

    user = subscription.user
    last = _last_paid_checkout(subscription)
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
    _cancel_open_renewals(subscription, now=now)


# ---------------------------------------------------------------------------
# The sweep
# ---------------------------------------------------------------------------


@dataclass
class SweepResult:
    checkouts_expired: int = 0
    never_paid: int = 0
    expired: int = 0
    canceled_at_period_end: int = 0
    renewals_closed: int = 0
    past_due: int = 0
    renewals_issued: int = 0
    renewal_checkout_ids: list = field(default_factory=list, repr=False)

    @property
    def rows_changed(self) -> int:
        return (
            self.checkouts_expired + self.never_paid + self.expired + self.canceled_at_period_end
            + self.renewals_closed + self.past_due + 2 * self.renewals_issued  # claim + new checkout
        )

    def summary(self) -> str:
        return (
            f"renewals issued {self.renewals_issued}, past due {self.past_due}, expired {self.expired}, "
            f"canceled at period end {self.canceled_at_period_end}, stale checkouts expired {self.checkouts_expired}, "
            f"never paid {self.never_paid}, renewal charges closed {self.renewals_closed}"
        )


def sweep_subscriptions(*, now: datetime | None = None, progress=None) -> SweepResult:
    """
    Moves every subscription and checkout the clock has overtaken, in a fixed
    number of set-based statements, whatever the number of rows:

    1. unpaid first checkouts whose PIX expired or that are a day old → expired;
    2. their pending subscriptions → expired (`never_paid`);
    3. live subscriptions past grace → expired;
    4. subscriptions canceled at period end whose period is over → canceled;
    5. renewal charges of subscriptions no longer live → expired;
    6. active subscriptions past `end_date` → past_due (`grace_started`);
    7. due renewals: claimed by compare-and-set (`renewal_issued_for` ← `end_date`),
       read back, created in one bulk insert, e-mailed after commit.

    Each step is its own short transaction and a compare-and-set on the rows'
    own columns: a second sweep running at the same moment waits on the row
    locks, re-checks the condition (PostgreSQL re-evaluates it on the new row
    version) and finds nothing left to do. Keeping the steps apart also means
    the sweep never holds subscription locks while waiting for checkout
    locks, the reverse of activate_checkout's order.
    """
    now = now or timezone.now()
    result = SweepResult()
    report = progress or (lambda step, count: None)
    S, C = Subscription.Status, Checkout.Status
    grace_start = now - timedelta(days=settings.SUBSCRIPTION_GRACE_DAYS)

    with transaction.atomic():
        result.checkouts_expired = (
            Checkout.objects.filter(status=C.PENDING, purpose=Checkout.Purpose.NEW)
            .filter(Q(pix_expires_at__lt=now) | Q(created_at__lt=now - STALE_CHECKOUT_AGE))
            .update(status=C.EXPIRED, updated_at=now)
        )
    report("checkouts_expired", result.checkouts_expired)

    with transaction.atomic():
        unpaid_first = Checkout.objects.filter(
            subscription=OuterRef("pk"), purpose=Checkout.Purpose.NEW, status__in=[C.EXPIRED, C.FAILED, C.CANCELED]
        )
        still_open = Checkout.objects.filter(subscription=OuterRef("pk"), status__in=[C.PENDING, C.PAID])
        result.never_paid = (
            Subscription.objects.filter(status=S.PENDING)
            .filter(Exists(unpaid_first), ~Exists(still_open))
            .update(status=S.EXPIRED, last_reason=Subscription.Reason.NEVER_PAID, last_transition_at=now, updated_at=now)
        )
    report("never_paid", result.never_paid)

    with transaction.atomic():
        result.expired = Subscription.objects.filter(
            status__in=Subscription.LIVE_STATUSES, cancel_at_period_end=False, end_date__lte=grace_start
        ).update(status=S.EXPIRED, last_reason=Subscription.Reason.EXPIRED, last_transition_at=now, updated_at=now)
    report("expired", result.expired)

    with transaction.atomic():
        # The reason stays `canceled_by_user`: that is why it ended.
        result.canceled_at_period_end = Subscription.objects.filter(
            status__in=Subscription.LIVE_STATUSES, cancel_at_period_end=True, end_date__lte=now
        ).update(status=S.CANCELED, last_transition_at=now, updated_at=now)
    report("canceled_at_period_end", result.canceled_at_period_end)

    with transaction.atomic():
        # Still payable (activate_checkout accepts a late payment); just no longer open.
        result.renewals_closed = (
            Checkout.objects.filter(status=C.PENDING, purpose=Checkout.Purpose.RENEWAL)
            .exclude(Exists(Subscription.objects.filter(pk=OuterRef("subscription_id"), status__in=Subscription.LIVE_STATUSES)))
            .update(status=C.EXPIRED, updated_at=now)
        )
    report("renewals_closed", result.renewals_closed)

    with transaction.atomic():
        result.past_due = Subscription.objects.filter(
            status=S.ACTIVE, cancel_at_period_end=False, end_date__lte=now
        ).update(status=S.PAST_DUE, last_reason=Subscription.Reason.GRACE_STARTED, last_transition_at=now, updated_at=now)
    report("past_due", result.past_due)

    _issue_renewals(now=now, result=result)
    report("renewals_issued", result.renewals_issued)
    logger.info("subscriptions swept", extra={"summary": result.summary()})
    return result


@transaction.atomic
def _issue_renewals(*, now: datetime, result: SweepResult) -> None:
    claim = uuid.uuid4()
    open_renewal = Checkout.objects.filter(
        subscription=OuterRef("pk"), purpose=Checkout.Purpose.RENEWAL, status=Checkout.Status.PENDING
    )
    # The compare-and-set: only conditions on the row's own columns, so a
    # concurrent sweep that waited for our row locks re-checks them and skips.
    claimed = (
        Subscription.objects.filter(
            status__in=Subscription.LIVE_STATUSES,
            cancel_at_period_end=False,
            end_date__lte=now + timedelta(days=settings.RENEWAL_NOTICE_DAYS),
            end_date__gt=now - timedelta(days=settings.SUBSCRIPTION_GRACE_DAYS),
        )
        .filter(Q(renewal_issued_for__isnull=True) | ~Q(renewal_issued_for=F("end_date")))
        .exclude(Exists(open_renewal))  # an admin extension keeps the charge already issued
        .update(renewal_issued_for=F("end_date"), sweep_claim=claim, updated_at=now)
    )
    if not claimed:
        return
    from billing.fields import EncryptedTextField

    last_paid = Checkout.objects.filter(subscription=OuterRef("pk"), status=Checkout.Status.PAID).order_by("-paid_at", "-pk")
    # Plain values, not model instances: a backlog of renewals is read in one
    # query without building a user, a plan and a subscription object per row.
    rows = (
        Subscription.objects.filter(sweep_claim=claim)
        .annotate(
            last_document=Subquery(last_paid.values("customer_document")[:1], output_field=EncryptedTextField()),
            last_phone=Subquery(last_paid.values("customer_phone")[:1]),
            last_name=Subquery(last_paid.values("customer_name")[:1]),
        )
        .order_by("pk")
        .values(
            "pk", "user_id", "user__email", "user__name", "end_date", "last_document", "last_phone", "last_name",
            "plan_id", "plan__name", "plan__price_cents", "plan__accepts_pix", "plan__accepts_card",
            "next_plan_id", "next_plan__name", "next_plan__price_cents", "next_plan__accepts_pix", "next_plan__accepts_card",
        )
    )
    checkouts, notices = [], []
    titles = {}
    for row in rows:
        key = "next_plan__" if row["next_plan_id"] else "plan__"
        plan_id = row["next_plan_id"] or row["plan_id"]
        name, price = row[key + "name"], row[key + "price_cents"]
        method = Checkout.Method.PIX if row[key + "accepts_pix"] or not row[key + "accepts_card"] else Checkout.Method.CARD
        if name not in titles:
            titles[name] = _("%(plan)s (renewal)") % {"plan": name}
        customer_name = (row["last_name"] or row["user__name"] or row["user__email"])[:150]
        checkout = Checkout(
            user_id=row["user_id"],
            plan_id=plan_id,
            purpose=Checkout.Purpose.RENEWAL,
            subscription_id=row["pk"],
            payment_method=method,
            plan_price_cents=price,
            bumps_cents=0,
            credit_cents=0,
            total_cents=price,
            items=[{"title": titles[name], "unit_price_cents": price, "quantity": 1}],
            customer_name=customer_name,
            customer_email=row["user__email"],
            customer_document=row["last_document"] or "",
            customer_phone=row["last_phone"] or "",
            created_at=now,
        )
        checkouts.append(checkout)
        notices.append([row["user__email"], customer_name, name, price, str(checkout.public_id), row["end_date"].isoformat()])
    Checkout.objects.bulk_create(checkouts)
    result.renewals_issued = len(checkouts)
    result.renewal_checkout_ids = [c.public_id for c in checkouts]
    transaction.on_commit(lambda: _dispatch_renewal_notices(notices))


# Renewal e-mails go to the worker in chunks: the sweep neither waits on SMTP
# nor renders thousands of templates; a chunk that fails is retried alone.
NOTICE_CHUNK = 500


def _dispatch_renewal_notices(notices: list) -> None:
    from billing.tasks import send_renewal_notices as task
    from config.tasks import enqueue

    for start in range(0, len(notices), NOTICE_CHUNK):
        try:
            enqueue(task, notices=notices[start : start + NOTICE_CHUNK])
        except Exception:  # noqa: BLE001 - the renewals exist either way; they show on /account/
            logger.exception("renewal notices not queued", extra={"count": len(notices[start : start + NOTICE_CHUNK])})


def checkout_link(public_id) -> str:
    """Where a customer pays a checkout: the payments pages' URL when installed, else the account page."""
    for name in ("checkout-pay", "billing:checkout-pay"):
        try:
            return settings.SITE_URL + reverse(name, kwargs={"checkout_id": public_id})
        except NoReverseMatch:
            continue
    return f"{settings.SITE_URL}/account/?checkout={public_id}"


def send_renewal_notices(*, notices) -> int:
    """
    One e-mail per renewal issued, over one connection; `notices` are
    [email, name, plan name, total cents, checkout public id, end date ISO].
    Raises on an SMTP failure so the task retries.
    """
    from billing.money import format_brl

    messages = []
    # Each e-mail whole in its recipient's language (pt-BR unless they chose English): subject,
    # text and the date's month name rendered under the same override.
    languages = languages_for_emails([notice[0] for notice in notices])
    for email, name, plan_name, total_cents, public_id, end_date in notices:
        with translation.override(languages[email.lower()]):
            context = {
                "name": name,
                "plan": plan_name,
                "total": format_brl(total_cents),
                "link": checkout_link(public_id),
                "end_date": timezone.localtime(datetime.fromisoformat(end_date)),
            }
            messages.append(
                EmailMessage(
                    subject=str(_("Your CreatorFlix subscription renews soon")),
                    body=render_to_string("billing/email/renewal_notice.txt", context),
                    to=[email],
                )
            )
    with get_connection() as connection:
        sent = connection.send_messages(messages) or 0
    logger.info("renewal notices sent", extra={"count": sent})
    return sent


# ---------------------------------------------------------------------------
# Gateways
# ---------------------------------------------------------------------------


@transaction.atomic
def activate_gateway(*, gateway: PaymentGateway) -> PaymentGateway:
    """
    Makes `gateway` active. For an internal kind (sandbox, JunglePay) it
    becomes the one gateway of our checkout: the others are switched off first,
    in the same transaction (the database also refuses two at once).
    """
    gateway = PaymentGateway.objects.select_for_update().get(pk=gateway.pk)
    if gateway.is_active:
        return gateway
    if gateway.is_internal:
        PaymentGateway.objects.select_for_update().filter(
            kind__in=PaymentGateway.INTERNAL_KINDS, is_active=True
        ).exclude(pk=gateway.pk).update(is_active=False)
    gateway.is_active = True
    gateway.save(update_fields=["is_active", "updated_at"])
    return gateway


@transaction.atomic
def deactivate_gateway(*, gateway: PaymentGateway) -> PaymentGateway:
    gateway = PaymentGateway.objects.select_for_update().get(pk=gateway.pk)
    if gateway.is_active:
        gateway.is_active = False
        gateway.save(update_fields=["is_active", "updated_at"])
    return gateway


@transaction.atomic
def rotate_postback_token(*, gateway: PaymentGateway) -> PaymentGateway:
    """A new token; the old postback URL stops working at once (paste the new one)."""
    gateway = PaymentGateway.objects.select_for_update().get(pk=gateway.pk)
    gateway.rotate_postback_token()
    gateway.save(update_fields=["postback_token", "updated_at"])
    return gateway
