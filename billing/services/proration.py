"""
Proration: what the unused part of a period is worth, and what that worth
buys on another plan. Prices and durations are always the plan as sold (the
paid checkouts' snapshots), never today's plan: repricing a plan changes
nothing for those who already paid. Only money counts: a coupon's discount
was never paid, a free trial's days cost nothing.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from fractions import Fraction

from billing.ledger_models import LedgerEntry
from billing.models import Checkout, Subscription

Kind, Cause = LedgerEntry.Kind, LedgerEntry.Cause
# Grants a checkout's own money bought (the audit's list too): worth its plan line as paid.
PAID_BY_CHECKOUT = frozenset({Cause.NEW, Cause.RENEWAL, Cause.LATE, Cause.UPGRADE, Cause.FREE, Cause.BACKFILL, Cause.DISPUTE_REVERSED})

SECONDS_PER_DAY = 24 * 60 * 60


def last_paid_checkout(subscription: Subscription) -> Checkout | None:
    return (
        Checkout.objects.filter(subscription=subscription, status=Checkout.Status.PAID).order_by("-paid_at", "-pk").first()
    )


def upgrade_credit_cents(*, subscription: Subscription, now: datetime) -> int:
    """
    The unused value of the current period, in cents: what was actually paid
    for the days still ahead (contract §9.6), pro rata by seconds, with one
    rounding step (half up) at the end — exact fractions throughout.

    The days ahead are read from the ledger's grants, each cut where a later
    revoke took access back (billing/ledger.py), the same way the money audit
    values them: a day is worth what its grant was paid, spread over the
    grant. A checkout's days are worth its plan line as paid: price less the
    coupon's discount (an upgrade's credit was money paid before, so it
    counts); the marketplace's days, what it was paid for them; days a free
    trial or an admin gave (activate, extend), nothing, since no money bought
    them. Records from before the ledger (backfilled) are valued at the plan.

    Worked example (tests/billing/test_services_plan_change.py): R$ 29,90 for
    30 days with 10 used → 2990 × 20/30 = 1993.33… → 1993 cents of credit;
    bought at 50% off → 1495 × 20/30 → 997.
    """
    if not subscription.end_date or subscription.end_date <= now:
        return 0
    entries = list(
        LedgerEntry.objects.filter(subscription_id=subscription.pk, kind__in=[Kind.GRANT, Kind.REVOKE, Kind.PAYMENT])
        .order_by("pk")
        .values_list(
            "kind", "cause", "starts_at", "ends_at", "amount_cents", "created_at",
            "checkout__plan_price_cents", "checkout__discount_cents",
        )
    )
    plan_price = subscription.plan.price_cents
    if not any(kind == Kind.GRANT for kind, *_rest in entries):
        # A subscription made outside the services (no ledger row at all): the plan's rate.
        ahead = int((subscription.end_date - now).total_seconds())
        return math.floor(Fraction(plan_price * ahead, subscription.plan.duration_days * SECONDS_PER_DAY) + Fraction(1, 2))
    grants: list[dict] = []
    marketplace_paid: dict[datetime, int] = {}  # a marketplace grant's money: the payment row written with it
    for kind, cause, starts_at, ends_at, amount_cents, created_at, price_cents, discount_cents in entries:
        if kind == Kind.GRANT:
            paid = price_cents - discount_cents if price_cents is not None and cause in PAID_BY_CHECKOUT else None
            grants.append({"cause": cause, "starts_at": starts_at, "ends_at": ends_at, "cut": ends_at, "created_at": created_at, "paid": paid})
        elif kind == Kind.REVOKE:
            for grant in grants:
                grant["cut"] = min(grant["cut"], starts_at)
        elif cause == Cause.MARKETPLACE:
            marketplace_paid[created_at] = amount_cents
    value = Fraction(0)
    for grant in grants:
        span = int((grant["ends_at"] - grant["starts_at"]).total_seconds())
        ahead = int((grant["cut"] - max(now, grant["starts_at"])).total_seconds())
        if span <= 0 or ahead <= 0:
            continue
        if grant["paid"] is not None:
            paid = grant["paid"]
        elif grant["cause"] == Cause.MARKETPLACE:
            paid = marketplace_paid.get(grant["created_at"], 0)
        elif grant["cause"] == Cause.BACKFILL:
            paid = plan_price
        else:
            paid = 0  # a trial's or an admin's days
        value += Fraction(paid * ahead, span)
    return math.floor(value + Fraction(1, 2))


def credit_adjustment(*, subscription: Subscription, checkout: Checkout, start: datetime) -> timedelta:
    """
    Time on the upgrade's plan that squares its credit with the paid time
    left when it is paid: the unused value at `start` minus the credit the
    upgrade was priced with, converted at the upgrade's own rate, rounded
    down. Positive when days were paid since the pricing (a renewal paid in
    between: kept, not lost); negative by the value used up since the
    pricing (never a day that was not paid for).
    """
    if checkout.plan_price_cents <= 0:
        return timedelta(0)
    surplus_cents = upgrade_credit_cents(subscription=subscription, now=start) - checkout.credit_cents
    seconds = surplus_cents * checkout.plan_duration_days * SECONDS_PER_DAY // checkout.plan_price_cents
    return timedelta(seconds=seconds)
