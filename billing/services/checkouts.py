"""Checkouts: created with server-side totals, failed, refunded."""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.age import require_min_age
from accounts.services import declare_birth_date
from billing import ledger
from billing.checkout_status import save_checkout
from billing.documents import digits_only
from billing.exceptions import InvalidInput, TransitionNotAllowed, TrialNotAvailable
from billing.gateways.base import CHARGEBACK_PROVIDER_STATUSES, DISPUTED_PROVIDER_STATUSES
from billing.ledger_models import LedgerEntry
from billing.models import Checkout, Coupon, OrderBump, Plan, ReconciliationItem, RefundRequest, Subscription
from billing.notifications import queue_refund_email
from billing.periods import status_by_clock
from billing.personal_data import document_digest
from billing.pricing import price_checkout
from billing.services.common import set_transition, void_open_charges
from billing.services.locks import lock_checkout
from billing.services.offers import coupon_for_checkout, hold_coupon_use, is_first_time_buyer
from billing.services.outbox import emit_checkout_event
from billing.services.review import list_for_review
from billing.tracking import checkout_tracking

logger = logging.getLogger(__name__)



@transaction.atomic
def create_checkout(
    *,
    plan: Plan,
    customer_name: str,
    customer_email: str,
    customer_document: str = "",
    customer_phone: str = "",
    customer_birth_date=None,
    terms_version: int | None = None,
    order_bump_ids=(),
    payment_method: str = Checkout.Method.PIX,
    installments: int = 1,
    user=None,
    purpose: str = Checkout.Purpose.NEW,
    subscription: Subscription | None = None,
    credit_cents: int = 0,
    coupon_code: str = "",
    trial: bool = False,
    tracking: dict | None = None,
    consent: tuple[bool, bool] | None = None,
    now: datetime | None = None,
) -> Checkout:
    """
    A pending checkout whose totals are computed here, never taken from the
    client: total = plan price + active order bumps - credit (upgrades) -
    the coupon's discount (NEW purchases; services.offers). Credit and
    discount lower the plan line only, never below zero, never the bumps.

    `trial=True` (the checkout API) on a plan with `trial_days` and no coupon:
    a first-time buyer (by account, e-mail and CPF) gets a free-trial checkout, 0
    and sold for the trial's days (`is_trial`; settle_free_checkout pays it
    and activation starts `trialing`); anyone else gets TrialNotAvailable,
    whose message offers the paid plan.

    `tracking` is where the sale came from ({"first", "last"} touches,
    billing.tracking); only known keys are kept. `consent` is the buyer's
    cookie choice, (analytics, marketing): the ad platforms hear of the sale
    only as far as it allows (integrations.conversions).

    `items` snapshots what is sold, as sent to the gateway; its lines add up
    to `total_cents`. A NEW checkout of a known user without a live
    subscription opens a `pending` subscription (contract §8), which ends
    `expired`/`never_paid` if the charge is never paid.
    """
    now = now or timezone.now()
    plan = Plan.objects.get(pk=plan.pk)  # fresh: the price is read from the database, not a stale instance
    installments = _check_purchase(
        plan=plan, purpose=purpose, payment_method=payment_method, installments=installments, subscription=subscription
    )
    customer_name, customer_email = _check_buyer(
        customer_name=customer_name, customer_email=customer_email, customer_birth_date=customer_birth_date, user=user, now=now
    )
    bumps = _chosen_bumps(order_bump_ids)
    is_trial = _is_trial(
        plan=plan, purpose=purpose, trial=trial, coupon_code=coupon_code, bumps=bumps,
        customer_email=customer_email, customer_document=customer_document, user=user,
    )
    coupon = None
    if coupon_code and coupon_code.strip():
        if purpose != Checkout.Purpose.NEW:
            raise InvalidInput("coupon", _("Coupons apply to new subscriptions only."), code="coupon_not_for_purpose")
        coupon = coupon_for_checkout(
            code=coupon_code, plan=plan, email=customer_email, document=customer_document, user=user, now=now
        )
    sold = price_checkout(
        plan_price_cents=0 if is_trial else plan.price_cents,
        bumps_cents=sum(bump.price_cents for bump in bumps),
        credit_cents=credit_cents,
        coupon_kind=coupon.kind if coupon else None,
        coupon_value=coupon.value if coupon else 0,
    )
    items = _sold_items(plan=plan, purpose=purpose, is_trial=is_trial, coupon=coupon, plan_line_cents=sold.plan_line_cents, bumps=bumps)
    if user is not None and purpose == Checkout.Purpose.NEW and subscription is None:
        subscription = _pending_subscription(user=user, plan=plan, now=now)

    fields = dict(
        user=user,
        plan=plan,
        purpose=purpose,
        subscription=subscription,
        payment_method=payment_method,
        installments=installments,
        plan_price_cents=sold.plan_price_cents,
        plan_duration_days=plan.trial_days if is_trial else plan.duration_days,
        is_trial=is_trial,
        bumps_cents=sold.bumps_cents,
        credit_cents=sold.credit_cents,
        coupon=coupon,
        discount_cents=sold.discount_cents,
        total_cents=sold.total_cents,
        items=items,
        customer_name=customer_name[:150],
        customer_email=customer_email,
        customer_document=digits_only(customer_document),
        customer_document_digest=document_digest(customer_document),
        customer_phone=digits_only(customer_phone)[:20],
        customer_birth_date=customer_birth_date,
        terms_version=terms_version,
        terms_accepted_at=now if terms_version is not None else None,
        tracking=checkout_tracking(first=(tracking or {}).get("first"), last=(tracking or {}).get("last")),
        analytics_consent=consent[0] if consent is not None else None,
        marketing_consent=consent[1] if consent is not None else None,
        created_at=now,
    )
    checkout = _store_checkout(fields, plan=plan)
    if bumps:
        checkout.order_bumps.set(bumps)
    emit_checkout_event("checkout.created", checkout, now=now)
    if coupon is not None:
        hold_coupon_use(checkout=checkout, now=now)  # last: the coupon row is the last lock of the order
    return checkout


def _check_purchase(*, plan: Plan, purpose: str, payment_method: str, installments: int, subscription: Subscription | None) -> int:
    """What is bought may be bought this way; returns the installments (1 unless a card's)."""
    if purpose not in Checkout.Purpose.values:
        raise InvalidInput("purpose", _("Unknown checkout purpose."))
    # A renewal may continue a plan that is no longer sold; new sales and upgrades may not.
    if purpose != Checkout.Purpose.RENEWAL and not plan.is_active:
        raise InvalidInput("plan_id", _("This plan is not available."), code="plan_unavailable")
    if payment_method not in Checkout.Method.values or not plan.accepts(payment_method):
        raise InvalidInput("payment_method", _("This plan does not accept this payment method."), code="method_not_accepted")
    if payment_method != Checkout.Method.CARD:
        installments = 1  # installments are a card's
    max_installments = plan.max_installments if purpose == Checkout.Purpose.NEW else 1
    if not 1 <= installments <= max_installments:
        raise InvalidInput(
            "installments", _("Choose from 1 to %(max)d installments.") % {"max": max_installments}, code="invalid_installments"
        )
    if purpose != Checkout.Purpose.NEW and subscription is None:
        raise InvalidInput("subscription", _("A renewal or upgrade needs the subscription it continues."))
    return installments


def _check_buyer(*, customer_name: str, customer_email: str, customer_birth_date, user, now: datetime) -> tuple[str, str]:
    """The buyer's name and e-mail, cleaned; a declared birth date must be of age (and becomes the user's)."""
    customer_name = (customer_name or "").strip()
    customer_email = (customer_email or "").strip().lower()
    if not customer_name:
        raise InvalidInput("name", _("Enter your name."))
    if not customer_email or "@" not in customer_email:
        raise InvalidInput("email", _("Enter a valid e-mail address."))
    if customer_birth_date is not None:
        require_min_age(customer_birth_date, today=timezone.localdate(now))
        if user is not None:
            declare_birth_date(user=user, birth_date=customer_birth_date, now=now)
    return customer_name, customer_email


def _chosen_bumps(order_bump_ids) -> list[OrderBump]:
    """The extras chosen, every one of them active, in display order."""
    bump_ids = sorted({int(pk) for pk in order_bump_ids or ()})
    bumps = list(OrderBump.objects.filter(pk__in=bump_ids, is_active=True).order_by("display_order", "pk"))
    if len(bumps) != len(bump_ids):
        raise InvalidInput("order_bump_ids", _("One of the chosen extras is not available."), code="bump_unavailable")
    return bumps


def _is_trial(
    *, plan: Plan, purpose: str, trial: bool, coupon_code: str, bumps: list[OrderBump], customer_email: str, customer_document: str, user
) -> bool:
    """A free trial was asked for a plan that has one, without a coupon; only a first-time buyer, without extras, gets it."""
    is_trial = bool(trial and purpose == Checkout.Purpose.NEW and plan.trial_days and not (coupon_code or "").strip())
    if is_trial:
        if not is_first_time_buyer(email=customer_email, document=customer_document, user=user):
            raise TrialNotAvailable(_trial_used_message(plan))
        if bumps:
            raise InvalidInput("order_bump_ids", _("Extras cannot be added to a free trial."), code="bump_unavailable")
    return is_trial


def _sold_items(
    *, plan: Plan, purpose: str, is_trial: bool, coupon: Coupon | None, plan_line_cents: int, bumps: list[OrderBump]
) -> list[dict]:
    """What is sold, as sent to the gateway: the plan line (titled by what it is) and one line per extra."""
    plan_title = plan.name
    if purpose == Checkout.Purpose.RENEWAL:
        plan_title = _("%(plan)s (renewal)") % {"plan": plan.name}
    elif purpose == Checkout.Purpose.UPGRADE:
        plan_title = _("%(plan)s (upgrade, prorated)") % {"plan": plan.name}
    elif is_trial:
        plan_title = ngettext(
            "%(plan)s (free trial, %(days)d day)", "%(plan)s (free trial, %(days)d days)", plan.trial_days
        ) % {"plan": plan.name, "days": plan.trial_days}
    elif coupon is not None:
        plan_title = _("%(plan)s (coupon %(code)s)") % {"plan": plan.name, "code": coupon.code}
    items = [{"title": str(plan_title), "unit_price_cents": plan_line_cents, "quantity": 1}]
    items += [{"title": bump.name, "unit_price_cents": bump.price_cents, "quantity": 1} for bump in bumps]
    return items


def _pending_subscription(*, user, plan: Plan, now: datetime) -> Subscription | None:
    """A known user's NEW checkout without a live subscription opens a pending one (contract §8)."""
    if Subscription.objects.live().filter(user=user).exists():
        return None
    return Subscription.objects.create(user=user, plan=plan, status=Subscription.Status.PENDING, last_transition_at=now, created_at=now)


def _store_checkout(fields: dict, *, plan: Plan) -> Checkout:
    """Insert the checkout; a trial that loses the race for one-per-person is TrialNotAvailable."""
    if not fields["is_trial"]:
        return Checkout.objects.create(**fields)
    try:
        with transaction.atomic():
            return Checkout.objects.create(**fields)
    except IntegrityError:
        # one_trial_per_email / one_trial_per_cpf: a trial for this person was taken a moment ago.
        raise TrialNotAvailable(_trial_used_message(plan)) from None


def _trial_used_message(plan: Plan) -> str:
    return _("You have already had a free trial. Subscribe to %(plan)s for %(price)s to continue.") % {
        "plan": plan.name,
        "price": plan.price_display,
    }


@transaction.atomic
def refund_checkout(
    *, checkout: Checkout, now: datetime | None = None, closed_by: str = RefundRequest.ClosedBy.GATEWAY
) -> Checkout:
    """
    Refund, chargeback or PIX dispute (MED): the money is gone, so is access, at
    once, and the subscription's open renewal and upgrade charges are void (a
    later payment of one is kept for a person, never access). A pending
    RefundRequest of the checkout (a withdrawal) closes with it, `closed_by`
    the gateway's postback or staff.
    """
    now = now or timezone.now()
    locks = lock_checkout(checkout)
    checkout = locks.checkout
    if checkout.status == Checkout.Status.REFUNDED:
        return checkout
    if checkout.status != Checkout.Status.PAID:
        raise TransitionNotAllowed(_("Only a paid checkout can be refunded."))
    checkout.status = Checkout.Status.REFUNDED
    checkout.refunded_at = now
    save_checkout(checkout, update_fields=["status", "refunded_at", "updated_at"])
    RefundRequest.objects.filter(checkout=checkout, status=RefundRequest.Status.PENDING).update(
        status=RefundRequest.Status.REFUNDED, closed_at=now, closed_by=closed_by
    )
    chargeback = checkout.gateway_status in CHARGEBACK_PROVIDER_STATUSES
    ledger.record_refund(checkout=checkout, chargeback=chargeback, now=now)
    subscription = locks.own
    if subscription is not None:
        if subscription.status != Subscription.Status.REFUNDED:
            set_transition(subscription, status=Subscription.Status.REFUNDED, reason=Subscription.Reason.REFUNDED, now=now)
            subscription.save()
            ledger.record_revoke(
                subscription=subscription, starts_at=now, ends_at=subscription.end_date, checkout=checkout, now=now,
                cause=LedgerEntry.Cause.CHARGEBACK if chargeback else LedgerEntry.Cause.REFUND,
            )
        void_open_charges(subscription, now=now)
    emit_checkout_event("payment.chargedback" if chargeback else "payment.refunded", checkout, now=now)
    queue_refund_email(checkout)
    logger.info("checkout refunded", extra={"checkout": str(checkout.public_id)})
    return checkout


@transaction.atomic
def restore_disputed_checkout(*, checkout: Checkout, now: datetime | None = None) -> Checkout:
    """
    A PIX dispute (MED) decided for us: the gateway says `paid` again for a
    checkout refunded while `in_protest`. The checkout is paid again and its
    subscription gets back the period it had (active, or past due / expired
    by the clock, as the sweep would have it). When the customer has another
    live subscription by then, nothing is merged: the case is listed for a
    person (ReconciliationItem `dispute_not_restored`).
    """
    now = now or timezone.now()
    locks = lock_checkout(checkout)
    checkout = locks.checkout
    if checkout.status != Checkout.Status.REFUNDED or checkout.gateway_status not in DISPUTED_PROVIDER_STATUSES:
        return checkout
    checkout.status = Checkout.Status.PAID
    save_checkout(checkout, update_fields=["status", "updated_at"])
    ledger.record_chargeback_reversed(checkout=checkout, now=now)
    subscription = locks.own
    if subscription is None or subscription.status != Subscription.Status.REFUNDED:
        return checkout
    if locks.live is not None and locks.live.pk != subscription.pk:
        if checkout.gateway_id:
            list_for_review(
                gateway=checkout.gateway,
                transaction_id=checkout.gateway_transaction_id or str(checkout.public_id),
                kind=ReconciliationItem.Kind.DISPUTE_NOT_RESTORED,
                detail={"live_subscription": locks.live.pk},
                checkout=checkout,
                now=now,
            )
        return checkout
    status = status_by_clock(subscription.end_date, now=now)  # active, past due or expired, as the sweep would have it
    set_transition(subscription, status=status, reason=Subscription.Reason.PAID, now=now)
    subscription.save()
    if subscription.end_date and checkout.refunded_at and subscription.end_date > checkout.refunded_at:
        # The days the dispute's revoke took back (from when it was refunded), given back.
        ledger.record_grant(
            subscription=subscription, starts_at=checkout.refunded_at, ends_at=subscription.end_date,
            cause=LedgerEntry.Cause.DISPUTE_REVERSED, checkout=checkout, now=now,
        )
    logger.info("disputed checkout restored", extra={"checkout": str(checkout.public_id), "status": status})
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
    locks = lock_checkout(checkout)
    checkout = locks.checkout
    if checkout.status != Checkout.Status.PENDING:
        return checkout
    checkout.status = status
    save_checkout(checkout, update_fields=["status", "updated_at"])
    subscription = locks.own
    if subscription is not None:
        if checkout.purpose == Checkout.Purpose.NEW and subscription.status == Subscription.Status.PENDING:
            set_transition(subscription, status=Subscription.Status.EXPIRED, reason=Subscription.Reason.NEVER_PAID, now=now)
            subscription.save(update_fields=["status", "last_reason", "last_transition_at", "updated_at"])
        elif checkout.purpose == Checkout.Purpose.RENEWAL and subscription.is_live:
            subscription.renewal_issued_for = None
            subscription.save(update_fields=["renewal_issued_for", "updated_at"])
    return checkout
