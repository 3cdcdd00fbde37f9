"""
The one period rule: where a paid checkout's days start and end, and what
the grace after a period's end allows. Activation, the marketplace path,
renewals, upgrades, the sweep, a restored dispute, the access rule and the
money audit all read it from here. A leaf module (no models), so the query
sets can use it too.

- A payment while the subscription is live or in grace (its end later than
  `grace_start(paid_at)`) extends it from its current end: no paid day is
  lost, none is given twice; after that, a new period starts at `start`
  (when access is given).
- In grace (the end passed less than SUBSCRIPTION_GRACE_DAYS ago) a renewal
  may still be paid: the subscription is past due, still with access.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings


def grace() -> timedelta:
    return timedelta(days=settings.SUBSCRIPTION_GRACE_DAYS)


def grace_start(now: datetime) -> datetime:
    """A period that ended after this instant is still in grace at `now`."""
    return now - grace()


def continues(end_date: datetime | None, *, at: datetime) -> bool:
    """A payment at `at` extends a period ending at `end_date` (live or in grace), rather than starting a new one."""
    return bool(end_date and end_date > grace_start(at))


def paid_period(*, current_end: datetime | None, paid_at: datetime, start: datetime, days: int) -> tuple[datetime, datetime]:
    """(first day, end) of the days a payment of `days` buys: from the current end when it continues, else from `start`."""
    first = current_end if continues(current_end, at=paid_at) else start
    return first, first + timedelta(days=days)


def status_by_clock(end_date: datetime | None, *, now: datetime) -> str:
    """What the clock makes of a period ending at `end_date`: active, past due (in grace) or expired."""
    if end_date and end_date > now:
        return "active"
    if end_date and end_date > grace_start(now):
        return "past_due"
    return "expired"
