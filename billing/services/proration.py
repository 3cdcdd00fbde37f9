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

from billing.models import Checkout, Subscription

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

    The days ahead are walked back from `end_date` through the subscription's
    paid checkouts, latest first: a renewal paid the last `plan_duration_days`
    of the coverage; the purchase (or upgrade) that opened the period paid
    all the rest. Each day is worth its checkout's plan line as paid: price
    less the coupon's discount (an upgrade's credit was money paid before, so
    it counts); a free trial's days are worth nothing. A subscription with no
    checkout of ours (the admin's, the marketplace's) is valued at its plan.

    Worked example (tests/billing/test_services_plan_change.py): R$ 29,90 for
    30 days with 10 used → 2990 × 20/30 = 1993.33… → 1993 cents of credit;
    bought at 50% off → 1495 × 20/30 → 997.
    """
    if not subscription.end_date or subscription.end_date <= now:
        return 0
    ahead = int((subscription.end_date - now).total_seconds())
    paid = (
        Checkout.objects.filter(subscription=subscription, status=Checkout.Status.PAID)
        .order_by("-paid_at", "-pk")
        .values_list("purpose", "plan_price_cents", "discount_cents", "plan_duration_days")
    )
    value = Fraction(0)
    for purpose, price_cents, discount_cents, days in paid:
        period = days * SECONDS_PER_DAY
        span = min(ahead, period) if purpose == Checkout.Purpose.RENEWAL else ahead
        value += Fraction((price_cents - discount_cents) * span, period)
        ahead -= span
        if ahead <= 0:
            break
    if ahead > 0:
        # Days no checkout of ours paid for (sold by the admin or the marketplace): the plan's rate.
        value += Fraction(subscription.plan.price_cents * ahead, subscription.plan.duration_days * SECONDS_PER_DAY)
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
