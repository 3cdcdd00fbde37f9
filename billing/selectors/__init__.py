"""
Billing reads for the API, the site and the admin: what a customer has (plans, subscriptions, the
payment history, the withdrawal offer, the guest sign-in). The finance dashboard's figures are
billing/selectors/finance.py, re-exported here. Writes live in billing/services/; nothing here
changes a row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Case, Min, Sum, Value, When

from billing.models import Checkout, Plan, Subscription
from billing.money import format_brl
from billing.receipts import Receipt, list_marketplace_receipts
from billing.selectors.finance import bar_chart, get_finance_figures, get_method_figures, get_offer_figures


def list_active_plans():
    return Plan.objects.filter(is_active=True).order_by("display_order", "price_cents", "pk")


# One helper per question about "the user's subscription"; the API and the
# pages ask different ones on purpose.


def _subscriptions_of(user):
    return Subscription.objects.filter(user=user).select_related("plan", "next_plan")


def get_live_subscription(*, user) -> Subscription | None:
    """The live subscription (active or past due; at most one per user), else None: what can be cancelled or changed."""
    if not user.is_authenticated:
        return None
    return _subscriptions_of(user).live().first()


def get_current_subscription(*, user) -> Subscription | None:
    """The live subscription, else one waiting for its first payment, else None (`GET /api/me/subscription`)."""
    return get_live_subscription(user=user) or (
        _subscriptions_of(user).filter(status=Subscription.Status.PENDING).order_by("-created_at", "-pk").first()
        if user.is_authenticated
        else None
    )


def get_latest_subscription(*, user) -> Subscription | None:
    """
    The live subscription, else the latest one that ended (to show how), never a pending one (the pages).
    One query: the live one sorts first (every page a buyer opens asks this).
    """
    if not user.is_authenticated:
        return None
    live_first = Case(When(status__in=Subscription.LIVE_STATUSES, then=Value(0)), default=Value(1))
    return _subscriptions_of(user).exclude(status=Subscription.Status.PENDING).order_by(live_first, "-created_at").first()


def get_open_renewal(*, subscription: Subscription) -> Checkout | None:
    return (
        Checkout.objects.filter(
            subscription=subscription, purpose=Checkout.Purpose.RENEWAL, status=Checkout.Status.PENDING
        )
        .order_by("-created_at")
        .first()
    )


def get_payment_method(*, subscription: Subscription) -> str:
    """How the subscription's last payment was made: "card", "pix", or "marketplace" (a Dias sale)."""
    if subscription.external_id:
        return "marketplace"
    last = (
        Checkout.objects.filter(subscription=subscription, status=Checkout.Status.PAID, total_cents__gt=0)
        .order_by("-paid_at", "-pk")
        .values_list("payment_method", flat=True)
        .first()
    )
    return "card" if last == Checkout.Method.CARD else "pix"


def withdrawal_closes_at(*, subscription: Subscription) -> datetime | None:
    """
    When the buyer's right to withdraw from `subscription` ends (CDC art. 49):
    WITHDRAWAL_DAYS after its first payment above zero (contract §3; a
    refunded one still counts as the first; a free trial or a 100% coupon
    paid nothing, so it opens no window). None: nothing was ever paid for it
    here (a trial alone, admin, marketplace).
    """
    first = (
        Checkout.objects.filter(
            subscription=subscription,
            status__in=[Checkout.Status.PAID, Checkout.Status.REFUNDED],
            paid_at__isnull=False,
            total_cents__gt=0,
        ).aggregate(first=Min("paid_at"))["first"]
    )
    return first + timedelta(days=settings.WITHDRAWAL_DAYS) if first else None


def get_withdrawal_offer(*, subscription: Subscription | None, now: datetime) -> dict | None:
    """What /account/ offers: the amount a withdrawal refunds now and the window's end; None when closed."""
    if subscription is None or not subscription.is_live:
        return None
    closes_at = withdrawal_closes_at(subscription=subscription)
    if closes_at is None or now > closes_at:
        return None
    amount = Checkout.objects.filter(subscription=subscription, status=Checkout.Status.PAID).aggregate(
        cents=Sum("total_cents")
    )["cents"]
    return {"closes_at": closes_at, "amount_cents": amount or 0, "amount_display": format_brl(amount or 0)}


@dataclass(frozen=True)
class HistoryRow:
    """One line of /account/'s payment history: a checkout of ours, or a marketplace payment (its receipt)."""

    at: datetime
    checkout: Checkout | None = None
    receipt: Receipt | None = None


def list_payment_history(*, user, limit: int) -> list[HistoryRow]:
    """
    /account/'s payment history, newest first, at most `limit` rows in two
    queries however long it grows: the user's checkouts (every status, by
    creation) merged with their marketplace payments (no checkout of ours:
    read as the receipts `GET /api/me/receipts` lists, by payment).
    """
    # Guest checkouts of the e-mail show only once the e-mail is confirmed: until then the
    # account may be a squatter's, and they are someone else's payments (contract §3).
    checkouts = Checkout.objects.of_customer(user).select_related("plan").order_by("-created_at", "-pk")[:limit]
    rows = [HistoryRow(at=checkout.created_at, checkout=checkout) for checkout in checkouts]
    rows += [HistoryRow(at=receipt.paid_at, receipt=receipt) for receipt in list_marketplace_receipts(user=user, limit=limit)]
    return sorted(rows, key=lambda row: row.at, reverse=True)[:limit]


# ---------------------------------------------------------------------------
# Finance dashboard


# How long after its payment a guest checkout still signs in the browser that paid it.
GUEST_SIGN_IN_WINDOW = timedelta(days=1)


def get_account_to_sign_in(*, checkout_id, created_here: bool, now: datetime):
    """
    The account a guest who paid may be signed in to, in the browser that
    created the checkout (contract §3), or None. Only when all hold:
    `created_here` (the caller's session created this checkout), the checkout
    is paid, its payment created the account (`account_created`: never an
    account that existed before), nobody has set a password on it yet (the
    set-password e-mail is the only other way in), it is an active customer
    account, and the payment is recent.
    """
    if not created_here:
        return None
    checkout = (
        Checkout.objects.select_related("user")
        .filter(public_id=checkout_id, status=Checkout.Status.PAID, account_created=True, user__isnull=False)
        .first()
    )
    if checkout is None or checkout.paid_at is None or now - checkout.paid_at > GUEST_SIGN_IN_WINDOW:
        return None
    user = checkout.user
    if not user.is_active or user.is_staff or user.is_superuser or user.has_usable_password():
        return None
    return user


__all__ = [
    "bar_chart",
    "get_account_to_sign_in",
    "get_current_subscription",
    "get_finance_figures",
    "get_latest_subscription",
    "get_live_subscription",
    "get_method_figures",
    "get_offer_figures",
    "get_open_renewal",
    "get_payment_method",
    "get_withdrawal_offer",
    "list_active_plans",
    "list_payment_history",
    "withdrawal_closes_at",
    "GUEST_SIGN_IN_WINDOW",
]
