"""
Proration: what the unused part of a period is worth, and what that worth
buys on another plan. Prices and durations are always the plan as sold (the
subscription's last paid checkout's snapshot), never today's plan: repricing
a plan changes nothing for those who already paid.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from billing.models import Checkout, Subscription

SECONDS_PER_DAY = 24 * 60 * 60


def last_paid_checkout(subscription: Subscription) -> Checkout | None:
    return (
        Checkout.objects.filter(subscription=subscription, status=Checkout.Status.PAID).order_by("-paid_at", "-pk").first()
    )


def period_rate(subscription: Subscription) -> tuple[int, int]:
    """(price in cents, duration in days) of the period the subscription is in, as sold."""
    last = last_paid_checkout(subscription)
    if last is not None:
        return last.plan_price_cents, last.plan_duration_days
    # Never paid through a checkout of ours (the admin's activation, the marketplace): the plan.
    return subscription.plan.price_cents, subscription.plan.duration_days


def upgrade_credit_cents(*, subscription: Subscription, now: datetime) -> int:
    """
    The unused value of the current period, in cents: the price it was sold
    at times the share of its duration still ahead, pro rata by seconds, with
    one rounding step (half up) at the end — integer math throughout.

    Worked example (tests/billing/test_services_plan_change.py): R$ 29,90 for
    30 days with 10 used → 2990 × 20/30 = 1993.33… → 1993 cents of credit.
    """
    if not subscription.end_date or subscription.end_date <= now:
        return 0
    price, days = period_rate(subscription)
    remaining = int((subscription.end_date - now).total_seconds())
    period = days * SECONDS_PER_DAY
    return (2 * price * remaining + period) // (2 * period)


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
