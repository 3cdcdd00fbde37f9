"""
Offers: coupons (the discount on a checkout's plan line, their uses), and
the recovery of unpaid checkouts (reopening one from a reminder e-mail,
unsubscribing from the reminders; the sweep sends them).

A coupon lowers the plan line only, never the order bumps, never below zero.
Its uses are counted when a checkout carrying it is paid (`count_coupon_use`,
called by activate_checkout under its locks). To stop twenty buyers racing
for the last use from all paying for it, a pending checkout holding the
coupon reserves a use: `hold_coupon_use` locks the coupon row (the last lock
of the order, see services.locks) and counts paid uses plus the checkouts
still pending with it. A reservation ends by itself when its checkout expires
unpaid (the sweep); a checkout paid late after its reservation lapsed keeps
its purchase at the price it was shown, and its use is still counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.checkout_status import save_checkout
from billing.exceptions import (
    CheckoutNotFound,
    CheckoutNotPayable,
    CouponNotFound,
    InvalidInput,
)
from billing.models import Checkout, Coupon, Plan, ReminderOptOut, Subscription
from billing.personal_data import document_digest
from billing.services.locks import lock_checkout, lock_coupon

# Checkouts that show someone already bought (a paid or trialing subscription, by e-mail or CPF).
BOUGHT_STATUSES = (Checkout.Status.PAID, Checkout.Status.REFUNDED)


@dataclass(frozen=True)
class CouponQuote:
    coupon: Coupon
    discount_cents: int
    total_cents: int


def normalize_code(code: str | None) -> str:
    return (code or "").strip().upper()


def is_first_time_buyer(*, email: str, document: str = "", user=None) -> bool:
    """
    "New" (a new-subscribers-only coupon, a free trial) means the buyer's
    account, e-mail and CPF alike never paid for (or started a trial of) a
    subscription here: a logged-in subscriber typing another e-mail and CPF
    is not new.
    """
    email = (email or "").strip().lower()
    bought = Q(customer_email__iexact=email) if email else Q(pk__in=[])
    digest = document_digest(document)
    if digest:
        bought |= Q(customer_document_digest=digest)
    owners = Q(user__email__iexact=email) if email else Q(pk__in=[])
    if user is not None and user.pk is not None:
        bought |= Q(user_id=user.pk)
        owners |= Q(user_id=user.pk)
    if Checkout.objects.filter(bought, status__in=BOUGHT_STATUSES).exists():
        return False
    return not Subscription.objects.filter(owners).exclude(
        status__in=[Subscription.Status.PENDING]
    ).exclude(last_reason=Subscription.Reason.NEVER_PAID).exists()


def _find(code: str) -> Coupon:
    code = normalize_code(code)
    coupon = Coupon.objects.filter(code=code, is_active=True).first() if code else None
    if coupon is None:
        raise CouponNotFound(_("This coupon does not exist."), code="coupon_unknown")
    return coupon


def _check(coupon: Coupon, *, plan: Plan, now: datetime, email: str = "", document: str = "", user=None) -> None:
    """Every reason a coupon does not apply, as a 400 naming `coupon`; the use limit is checked apart."""
    if coupon.starts_at > now:
        raise InvalidInput("coupon", _("This coupon is not valid yet."), code="coupon_not_started")
    if coupon.ends_at is not None and coupon.ends_at <= now:
        raise InvalidInput("coupon", _("This coupon has expired."), code="coupon_expired")
    if not coupon_applies_to_plan(coupon_id=coupon.pk, plan_id=plan.pk):
        raise InvalidInput("coupon", _("This coupon is not valid for this plan."), code="coupon_not_for_plan")
    if coupon.new_subscribers_only and (email or document or user) and not is_first_time_buyer(
        email=email, document=document, user=user
    ):
        raise InvalidInput("coupon", _("This coupon is only for new subscribers."), code="coupon_new_subscribers_only")


def coupon_plan_ids(coupon_ids) -> dict[int, set[int]]:
    """The plans each coupon names (a coupon naming none is for every plan, and absent here), in one query."""
    named: dict[int, set[int]] = {}
    for coupon_id, plan_id in Coupon.plans.through.objects.filter(coupon_id__in=list(coupon_ids)).values_list("coupon_id", "plan_id"):
        named.setdefault(coupon_id, set()).add(plan_id)
    return named


def coupon_applies_to_plan(*, coupon_id: int, plan_id: int, named: dict[int, set[int]] | None = None) -> bool:
    """The one plan rule of a coupon: it discounts only the plans it names (none named: every plan)."""
    plans = (named if named is not None else coupon_plan_ids([coupon_id])).get(coupon_id)
    return not plans or plan_id in plans


def drop_coupon_off_plan(subscription: Subscription, *, plan_id: int) -> None:
    """
    A subscription moving to `plan_id` (an upgrade paid, a scheduled downgrade
    renewed) keeps its recurring coupon only if the coupon names that plan.
    The caller holds the subscription's lock and saves it.
    """
    if subscription.coupon_id and not coupon_applies_to_plan(coupon_id=subscription.coupon_id, plan_id=plan_id):
        subscription.coupon_id, subscription.coupon_renewals_left = None, None


# A checkout reopened from a reminder (or about to get a fresh PIX) holds its coupon this long before
# its fresh PIX is issued, and the sweep does not expire it again meanwhile.
REOPEN_HOLD = timedelta(minutes=15)


def _uses_taken(coupon: Coupon, *, now: datetime, exclude_pk: int | None = None) -> int:
    """Paid uses plus the pending checkouts holding the coupon: PIX not expired, or reopened moments ago."""
    holding = Checkout.objects.filter(coupon=coupon, status=Checkout.Status.PENDING).filter(
        Q(pix_expires_at__isnull=True) | Q(pix_expires_at__gt=now) | Q(reopened_at__gt=now - REOPEN_HOLD)
    )
    if exclude_pk is not None:
        holding = holding.exclude(pk=exclude_pk)
    return coupon.uses + holding.count()


def _used_up() -> InvalidInput:
    return InvalidInput("coupon", _("This coupon has been used up."), code="coupon_used_up")


def quote_coupon(
    *, code: str, plan: Plan, email: str = "", document: str = "", user=None, now: datetime | None = None
) -> CouponQuote:
    """A read for the checkout page's live check: does the coupon apply to this plan now, and what it takes off."""
    now = now or timezone.now()
    coupon = _find(code)
    _check(coupon, plan=plan, now=now, email=email, document=document, user=user)
    if coupon.max_uses is not None and _uses_taken(coupon, now=now) >= coupon.max_uses:
        raise _used_up()
    discount = Coupon.discount_for(kind=coupon.kind, value=coupon.value, price_cents=plan.price_cents)
    return CouponQuote(coupon=coupon, discount_cents=discount, total_cents=plan.price_cents - discount)


def coupon_for_checkout(*, code: str, plan: Plan, email: str, document: str, now: datetime, user=None) -> Coupon:
    """The coupon a checkout being created asks for, checked (unlocked: `hold_coupon_use` decides the last use)."""
    coupon = _find(code)
    _check(coupon, plan=plan, now=now, email=email, document=document, user=user)
    return coupon


def hold_coupon_use(*, checkout: Checkout, now: datetime) -> None:
    """
    In create_checkout's transaction, after the checkout holding the coupon
    was inserted: the coupon row is locked (FOR NO KEY UPDATE, last in the
    lock order) and the uses taken recounted, this checkout included. Over
    the limit → the coupon is used up and the whole checkout is rolled back.
    Concurrent buyers queue on the coupon row, each seeing the ones before.
    """
    coupon = lock_coupon(checkout.coupon_id)
    if coupon.max_uses is not None and _uses_taken(coupon, now=now) > coupon.max_uses:
        raise _used_up()


def hold_coupon_again(*, checkout: Checkout, now: datetime) -> None:
    """
    A discounted checkout made payable again (reopened from a reminder, or a
    fresh PIX for one whose PIX expired: its hold lapsed meanwhile) is checked
    like a new one: the coupon still active, inside its dates, for its plan and
    buyer, and a use free besides this checkout's. Locks the coupon row (last
    in the lock order); the caller then marks the hold (`reopened_at`, then
    the fresh PIX's expiry). Refused: CheckoutNotPayable naming the reason.
    """
    if checkout.coupon_id is None or checkout.purpose != Checkout.Purpose.NEW:
        return
    coupon = lock_coupon(checkout.coupon_id)
    try:
        if not coupon.is_active:
            raise CouponNotFound(_("This coupon does not exist."), code="coupon_unknown")
        _check(
            coupon, plan=checkout.plan, now=now, email=checkout.customer_email, document=checkout.customer_document,
            user=checkout.user,
        )
        if coupon.max_uses is not None and _uses_taken(coupon, now=now, exclude_pk=checkout.pk) >= coupon.max_uses:
            raise _used_up()
    except (InvalidInput, CouponNotFound) as exc:
        raise CheckoutNotPayable(
            _("%(reason)s Start a new checkout to pay the current price.") % {"reason": exc.message}, code=exc.code
        ) from exc


def count_coupon_use(*, checkout: Checkout, subscription: Subscription | None, counted: bool = False) -> None:
    """
    A checkout with a coupon was paid (activate_checkout, under its locks):
    the use is counted (one UPDATE, atomic) unless `counted` already (a guest
    payment counted when it arrived, claimed now). A NEW purchase hands a
    recurring coupon on to its subscription; a discounted renewal spends one
    of the renewals left.
    """
    if checkout.coupon_id is None:
        return
    if checkout.purpose == Checkout.Purpose.RENEWAL:
        if subscription is None:
            return
        if subscription.coupon_id == checkout.coupon_id and subscription.coupon_renewals_left:
            subscription.coupon_renewals_left -= 1
            subscription.save(update_fields=["coupon_renewals_left", "updated_at"])
        return
    if not counted:
        Coupon.objects.filter(pk=checkout.coupon_id).update(uses=F("uses") + 1)
    if subscription is None:
        return
    renewals = Coupon.objects.values_list("renewals", flat=True).get(pk=checkout.coupon_id)
    if renewals != 0:
        subscription.coupon_id = checkout.coupon_id
        subscription.coupon_renewals_left = renewals
    else:
        subscription.coupon_id, subscription.coupon_renewals_left = None, None
    subscription.save(update_fields=["coupon", "coupon_renewals_left", "updated_at"])


@transaction.atomic
def create_coupon(
    *,
    code: str,
    kind: str,
    value: int,
    plan_ids=(),
    max_uses: int | None = None,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
    new_subscribers_only: bool = False,
    renewals: int | None = 0,
) -> Coupon:
    """A new coupon (manage.py create_coupon); the admin uses its own form with the same checks."""
    code = normalize_code(code)
    if not code:
        raise InvalidInput("code", _("Enter a coupon code."))
    if Coupon.objects.filter(code=code).exists():
        raise InvalidInput("code", _("A coupon with this code already exists."), code="coupon_exists")
    if kind not in Coupon.Kind.values:
        raise InvalidInput("kind", _("Choose percent or fixed amount."))
    if value <= 0 or (kind == Coupon.Kind.PERCENT and value > 100):
        raise InvalidInput("value", _("A percent is from 1 to 100; an amount is above zero."))
    plans = list(Plan.objects.filter(pk__in=plan_ids))
    if len(plans) != len(set(plan_ids)):
        raise InvalidInput("plans", _("One of the plans does not exist."))
    starts_at = starts_at or timezone.now()
    if ends_at is not None and ends_at <= starts_at:
        raise InvalidInput("ends", _("The end must be after the start."))
    coupon = Coupon.objects.create(
        code=code,
        kind=kind,
        value=value,
        max_uses=max_uses,
        starts_at=starts_at,
        ends_at=ends_at,
        new_subscribers_only=new_subscribers_only,
        renewals=renewals,
    )
    coupon.plans.set(plans)
    return coupon


def is_reopenable(checkout: Checkout) -> bool:
    """An unpaid first purchase that expired by the clock, after a reminder: the reminder's link may reopen it."""
    return (
        checkout.status == Checkout.Status.EXPIRED
        and checkout.purpose == Checkout.Purpose.NEW
        and not checkout.is_trial
        and checkout.total_cents > 0
        and checkout.recovery_reminders_sent > 0
    )


@transaction.atomic
def reopen_checkout(*, checkout_id, now: datetime | None = None) -> Checkout:
    """
    The customer came back from a reminder to an expired checkout: pending
    again, at the same price and with the same items (its snapshot), so
    that the checkout page's PIX call issues a fresh charge (the old charge
    stays matched if it is paid late). `reopened_at` keeps the sweep from
    expiring it again for a few minutes before that call. A pending one is
    returned as it is; one that cannot be reopened raises CheckoutNotPayable.
    """
    now = now or timezone.now()
    seen = Checkout.objects.filter(public_id=checkout_id).first()
    if seen is None:
        raise CheckoutNotFound(_("Checkout not found."))
    checkout = lock_checkout(seen).checkout
    if checkout.status == Checkout.Status.PENDING:
        return checkout
    if not is_reopenable(checkout):
        raise CheckoutNotPayable(_("This checkout can no longer be paid."))
    hold_coupon_again(checkout=checkout, now=now)  # its hold lapsed when it expired
    checkout.status = Checkout.Status.PENDING
    checkout.reopened_at = now
    save_checkout(checkout, update_fields=["status", "reopened_at", "updated_at"])
    return checkout


def unsubscribe_from_reminders(*, email: str, now: datetime | None = None) -> ReminderOptOut:
    """No more reminder e-mails of unpaid checkouts to this address. Idempotent."""
    opt_out, _created = ReminderOptOut.objects.get_or_create(
        email=(email or "").strip().lower(), defaults={"created_at": now or timezone.now()}
    )
    return opt_out
