"""
The money audit: contract §9's eight invariants computed from the database
(the money ledger, billing.ledger_models.LedgerEntry, beside the checkouts
and subscriptions it explains). Read-only. Each invariant is a few set-based
SQL statements whose cost does not grow in queries with the rows: they
aggregate in PostgreSQL and fetch only the violating rows (at most
`ROW_LIMIT` per check).

Public interface (stable; the property test and the command rely on it):

- `run_audit(since=None, now=None) -> AuditReport`, whose `violations` are
  `Violation(invariant, code, message, rows)`; `rows` names the rows
  involved: {"checkout": [ids], "subscription": [ids], "ledger": [ids], ...}.
- `expected_access(user, now=...) -> bool`: what the ledger's coverage
  (paid, trial and admin days, minus what was revoked) says about the
  user's access at `now`; `billing.access.user_has_access` must agree.
"""

from __future__ import annotations

import time
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from billing.audit.invariants import CHECKS
from billing.audit.report import ROW_LIMIT, AuditReport, Violation
from billing.ledger_models import LedgerEntry, MoneyAuditRun
from billing.models import Subscription
from billing.periods import grace_start

__all__ = ["ROW_LIMIT", "AuditReport", "Violation", "coverage", "expected_access", "record_audit_run", "run_audit"]


class AuditNeedsPostgreSQL(Exception):
    """The audit's statements are PostgreSQL's (LATERAL, FILTER, window functions): `make run`'s SQLite cannot run them."""


def run_audit(*, since: datetime | None = None, now: datetime | None = None) -> AuditReport:
    """
    Every invariant of contract §9, over the whole database or the rows
    touched since `since`, in one read-only snapshot (PostgreSQL: the
    statements use LATERAL, FILTER and window functions).
    """
    if connection.vendor != "postgresql":
        raise AuditNeedsPostgreSQL(f"the money audit is PostgreSQL's SQL; this database is {connection.vendor}")
    now = now or timezone.now()
    report = AuditReport(since=since, now=now)
    started = time.monotonic()
    executed = []

    def count(execute, sql, params, many, context):
        executed.append(sql)
        return execute(sql, params, many, context)

    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost:
            # One snapshot for every statement (a payment landing mid-audit cannot look half done), and read-only.
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        with connection.execute_wrapper(count):
            for check in CHECKS:
                report.violations.extend(check(since=since, now=now))
    report.queries = len(executed)
    report.duration_ms = int((time.monotonic() - started) * 1000)
    return report


# The violations a run keeps for the admin page (the command prints them all).
KEPT_VIOLATIONS = 200


def record_audit_run(report: AuditReport, *, started_at: datetime) -> MoneyAuditRun:
    """The run, for the admin's money audit page (the only write the audit makes: its own record)."""
    return MoneyAuditRun.objects.create(
        started_at=started_at,
        finished_at=timezone.now(),
        since=report.since,
        duration_ms=report.duration_ms,
        queries=report.queries,
        violation_count=len(report.violations),
        counts=report.counts(),
        summary=[
            {"invariant": v.invariant, "code": v.code, "message": v.message, "rows": v.rows}
            for v in report.violations[:KEPT_VIOLATIONS]
        ],
    )


def coverage(subscription_id: int) -> list[tuple[datetime, datetime, str]]:
    """
    The days the ledger says `subscription_id` has: each grant, cut where a
    later revoke takes access back from its `starts_at` on. (start, end,
    cause) of every non-empty piece, in grant order.
    """
    rows = LedgerEntry.objects.filter(
        subscription_id=subscription_id, kind__in=[LedgerEntry.Kind.GRANT, LedgerEntry.Kind.REVOKE]
    ).order_by("pk").values_list("kind", "starts_at", "ends_at", "cause")
    pieces: list[list] = []
    for kind, starts_at, ends_at, cause in rows:
        if kind == LedgerEntry.Kind.GRANT:
            pieces.append([starts_at, ends_at, cause])
        else:
            for piece in pieces:
                piece[1] = min(piece[1], starts_at)
    return [(start, end, cause) for start, end, cause in pieces if end > start]


def expected_access(user, *, now: datetime) -> bool:
    """
    Access as the ledger's coverage says: some subscription of the user
    covered at `now`; or its coverage ended less than SUBSCRIPTION_GRACE_DAYS
    ago and it may still renew (the grace of contract §8: not a trial, not
    canceled at the period's end, not ended by a status change). The age gate
    of contract §8 applies as it does to `user_has_access`.
    """
    if user is None or getattr(user, "age_confirmed_at", None) is None:
        return False
    subscriptions = Subscription.objects.filter(user_id=user.pk).values_list("pk", "status", "cancel_at_period_end")
    for pk, status, cancel_at_period_end in subscriptions:
        pieces = coverage(pk)
        if any(start <= now < end for start, end, _cause in pieces):
            return True
        if not pieces:
            continue
        last_end = max(end for _start, end, _cause in pieces)
        last_cause = max(pieces, key=lambda piece: piece[1])[2]
        in_grace = grace_start(now) < last_end <= now
        if in_grace and last_cause != LedgerEntry.Cause.TRIAL and not cancel_at_period_end and status in (
            Subscription.Status.ACTIVE,
            Subscription.Status.PAST_DUE,
        ):
            return True
    return False
