#!/usr/bin/env python
"""
Benchmark of the money audit (`billing.audit.run_audit`) on PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/audit.py [--subscriptions 200000] [--per 5] [--keep | --reuse]

Creates its own database `cf_bench_audit` (dropped at the end unless --keep),
migrates it, and bulk-loads in SQL (INSERT … SELECT over generate_series,
copying one template row of each table made by the ORM): SUBSCRIPTIONS users,
one subscription each and PER paid checkouts each (back-to-back periods, with
their payment and grant in the ledger as the services write them); a tenth
of the subscriptions ended by a refund of their last checkout (refund row and
revoke), a fifth expired by the clock. ANALYZEs, then runs the audit twice
and prints the rows, seconds, queries and violations of each run (a clean
load must give 0 violations).
"""

import argparse
import os
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DEBUG", "true")

DB_NAME = "cf_bench_audit"


def setup_django(reuse: bool):
    import django
    from django.conf import settings

    django.setup()
    from django.db import connection

    if connection.vendor != "postgresql":
        sys.exit("bench/audit.py needs PostgreSQL: set DATABASE_URL=postgres://...")
    base = settings.DATABASES["default"]["NAME"]
    if reuse:  # the database a --keep run left: audit it again, load nothing
        connection.close()
        settings.DATABASES["default"]["NAME"] = DB_NAME
        return base
    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = DB_NAME
    name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    print(f"database {name} created and migrated", flush=True)
    return base


def columns(cursor, table: str) -> list[str]:
    cursor.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = %s AND column_name <> 'id' ORDER BY ordinal_position",
        [table],
    )
    return [row[0] for row in cursor.fetchall()]


def clone(cursor, table: str, template_id: int, series: str, overrides: dict[str, str]) -> int:
    """Insert one row per value of `series` (SQL, yielding `n`), copying the template row except `overrides` (SQL expressions)."""
    names = columns(cursor, table)
    values = ", ".join(overrides.get(name, f"t.{name}") for name in names)
    cursor.execute(
        f"INSERT INTO {table} ({', '.join(names)}) SELECT {values} FROM {table} t, {series} AS n WHERE t.id = %s", [template_id]
    )
    return cursor.rowcount


def load(subscriptions: int, per: int, now) -> dict:
    from django.db import connection

    from billing.models import Checkout, Plan, Subscription
    from tests.factories import UserFactory

    plan = Plan.objects.create(name="Mensal", price_cents=2990, duration_days=30)
    user = UserFactory(email="template@example.com")
    sub = Subscription.objects.create(user=user, plan=plan, status="active", start_date=now, end_date=now + timedelta(days=30))
    checkout = Checkout.objects.create(
        user=user, plan=plan, subscription=sub, plan_price_cents=2990, plan_duration_days=30, total_cents=2990,
        customer_name="Bench", customer_email="template@example.com", status="paid", paid_at=now,
    )
    started = time.monotonic()
    counts = {}
    # Subscription i (1..N) belongs to user i; its checkouts k (0..per-1) paid back to back from `base`:
    # base = now - (per*30 - 20 - (i % 3) * 40) days, so ~2/3 are live now and ~1/3 ended by the clock.
    base = f"(CAST(%(now)s AS timestamptz) - ((({per} * 30) - 20 + (n %% 3) * 40) * INTERVAL '1 day'))"
    with connection.cursor() as cursor:
        def timed(label, fn):
            t = time.monotonic()
            rows = fn()
            counts[label] = rows
            print(f"  {label}: {rows} rows ({time.monotonic() - t:.1f}s)", flush=True)

        timed("users", lambda: clone(cursor, "accounts_user", user.pk, f"generate_series(1, {subscriptions})", {
            "email": "'u' || n || '@bench.invalid'", "password": "''",
        }))
        cursor.execute("SELECT MIN(id) FROM accounts_user WHERE email LIKE %s", ["u%@bench.invalid"])
        first_user = cursor.fetchone()[0]
        # ends: base + per*30 days; a third ended 20+ days ago (expired by the sweep after its grace), every tenth refunded.
        end = f"({base} + {per} * 30 * INTERVAL '1 day')"
        status = (
            f"CASE WHEN n %% 10 = 0 THEN 'refunded' WHEN {end} > CAST(%(now)s AS timestamptz) THEN 'active' ELSE 'expired' END"
        )
        overrides = {
            "user_id": f"{first_user} - 1 + n",
            "start_date": base, "end_date": end, "status": status,
            "last_reason": f"CASE WHEN n %% 10 = 0 THEN 'refunded' WHEN {end} > CAST(%(now)s AS timestamptz) THEN 'renewed' ELSE 'expired' END",
            # ended: refunded at now - 1 day (its revoke), or expired 3 days after its end (the grace)
            "last_transition_at": (
                f"CASE WHEN n %% 10 = 0 THEN CAST(%(now)s AS timestamptz) - INTERVAL '1 day' "
                f"WHEN {end} > CAST(%(now)s AS timestamptz) THEN {end} - INTERVAL '30 days' ELSE {end} + INTERVAL '3 days' END"
            ),
        }
        names = columns(cursor, "billing_subscription")
        values = ", ".join(overrides.get(name, f"t.{name}") for name in names)
        t = time.monotonic()
        cursor.execute(
            f"INSERT INTO billing_subscription ({', '.join(names)}) SELECT {values} FROM billing_subscription t, "
            f"generate_series(1, {subscriptions}) AS n WHERE t.id = %(template)s",
            {"now": now, "template": sub.pk},
        )
        counts["subscriptions"] = cursor.rowcount
        print(f"  subscriptions: {cursor.rowcount} rows ({time.monotonic() - t:.1f}s)", flush=True)
        cursor.execute("SELECT MIN(id) FROM billing_subscription WHERE user_id >= %s", [first_user])
        first_sub = cursor.fetchone()[0]

        # Checkouts: n enumerates (subscription, k): s = (n - 1) / per + 1, k = (n - 1) %% per.
        s_expr, k_expr = f"((n - 1) / {per} + 1)", f"((n - 1) %% {per})"
        paid_at = base.replace("(n %% 3)", f"({s_expr} %% 3)") + f" + {k_expr} * 30 * INTERVAL '1 day'"
        last_refunded = f"({s_expr} %% 10 = 0 AND {k_expr} = {per} - 1)"
        names = columns(cursor, "billing_checkout")
        overrides = {
            "public_id": "gen_random_uuid()", "user_id": f"{first_user} - 1 + {s_expr}", "subscription_id": f"{first_sub} - 1 + {s_expr}",
            "purpose": f"CASE WHEN {k_expr} = 0 THEN 'new' ELSE 'renewal' END",
            "customer_email": f"'u' || {s_expr} || '@bench.invalid'",
            "status": f"CASE WHEN {last_refunded} THEN 'refunded' ELSE 'paid' END",
            "paid_at": paid_at, "created_at": paid_at, "updated_at": paid_at,
            "refunded_at": f"CASE WHEN {last_refunded} THEN CAST(%(now)s AS timestamptz) - INTERVAL '1 day' END",
            "paid_transaction_id": "'tx' || n", "gateway_transaction_id": "'tx' || n",
        }
        values = ", ".join(overrides.get(name, f"t.{name}") for name in names)
        t = time.monotonic()
        cursor.execute(
            f"INSERT INTO billing_checkout ({', '.join(names)}) SELECT {values} FROM billing_checkout t, "
            f"generate_series(1, {subscriptions * per}) AS n WHERE t.id = %(template)s",
            {"now": now, "template": checkout.pk},
        )
        counts["checkouts"] = cursor.rowcount
        print(f"  checkouts: {cursor.rowcount} rows ({time.monotonic() - t:.1f}s)", flush=True)

        t = time.monotonic()
        # The ledger as the services write it: payment + grant per checkout, refund + revoke for the refunded.
        cursor.execute(
            """INSERT INTO billing_ledgerentry (kind, cause, amount_cents, gateway_id, transaction_id, checkout_id, subscription_id,
                   user_id, coupon_id, reconciliation_item_id, actor_id, note, starts_at, ends_at, created_at)
               SELECT x.kind, x.cause, x.amount, NULL, c.paid_transaction_id, c.id, c.subscription_id, c.user_id, NULL, NULL, NULL, '',
                      x.starts_at, x.ends_at, x.created_at
               FROM billing_checkout c CROSS JOIN LATERAL (VALUES
                   (1, 'payment', 'checkout', c.total_cents, NULL::timestamptz, NULL::timestamptz, c.paid_at),
                   (2, 'grant', CASE WHEN c.purpose = 'new' THEN 'new' ELSE 'renewal' END, 0, c.paid_at, c.paid_at + INTERVAL '30 days', c.paid_at),
                   (3, 'refund', 'refund', c.total_cents, NULL, NULL, c.refunded_at),
                   (4, 'revoke', 'refund', 0, c.refunded_at, c.paid_at + INTERVAL '30 days', c.refunded_at)
               ) AS x(step, kind, cause, amount, starts_at, ends_at, created_at)
               WHERE c.id <> %(template)s AND (x.step <= 2 OR c.status = 'refunded')
               ORDER BY c.id, x.step""",
            {"template": checkout.pk},
        )
        counts["ledger"] = cursor.rowcount
        print(f"  ledger: {cursor.rowcount} rows ({time.monotonic() - t:.1f}s)", flush=True)
        # The templates go: they are not part of the load.
        cursor.execute("DELETE FROM billing_ledgerentry WHERE checkout_id = %s OR subscription_id = %s", [checkout.pk, sub.pk])
        cursor.execute("DELETE FROM billing_checkout WHERE id = %s", [checkout.pk])
        cursor.execute("DELETE FROM billing_subscription WHERE id = %s", [sub.pk])
        t = time.monotonic()
        cursor.execute("ANALYZE")
        print(f"  analyze: {time.monotonic() - t:.1f}s", flush=True)
    counts["load_seconds"] = round(time.monotonic() - started, 1)
    return counts


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscriptions", type=int, default=200_000)
    parser.add_argument("--per", type=int, default=5, help="paid checkouts per subscription")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--reuse", action="store_true", help="audit the database a --keep run left, without loading")
    args = parser.parse_args()
    base = setup_django(args.reuse)
    from django.db import connection
    from django.utils import timezone

    from billing.audit import run_audit

    now = timezone.now()
    try:
        if not args.reuse:
            counts = load(args.subscriptions, args.per, now)
            print(f"loaded: {counts}", flush=True)
        else:
            from django.db.models import Max

            from billing.models import Checkout

            now = Checkout.objects.aggregate(at=Max("refunded_at"))["at"] + timedelta(days=1)  # the load refunds at now - 1 day
        for attempt in (1, 2):
            started = time.monotonic()
            report = run_audit(now=now)
            seconds = time.monotonic() - started
            print(
                f"audit run {attempt}: {seconds:.1f}s, {report.queries} queries, {len(report.violations)} violations",
                flush=True,
            )
            for violation in report.violations[:10]:
                print(f"  {violation}")
    finally:
        if not args.keep and not args.reuse:
            connection.creation.destroy_test_db(base, verbosity=0)
            print(f"database {DB_NAME} dropped")


if __name__ == "__main__":
    main()
