#!/usr/bin/env python
"""
Benchmark of `sweep_subscriptions` on PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/cf_billing python bench/sweep.py [--rows 200000] [--keep]

Creates its own database (`<name>_bench_sweep`, dropped at the end unless
--keep), migrates it, loads ROWS subscriptions in varied states with COPY
(one user each, plus paid and stale checkouts), ANALYZEs, then runs the sweep
twice and prints, for each run: rows changed, queries issued (captured with
django.test.utils.CaptureQueriesContext) and seconds. It repeats the first run
on a tenth of the rows so the query counts can be compared: they must be equal.
"""

import argparse
import io
import os
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DEBUG", "true")

# State mix, per 100 subscriptions (what the sweep should do with each).
MIX = [
    ("active_far", 55),  # active, ends in 10-80 days: nothing
    ("active_due", 10),  # active, ends within the notice days: renewal issued
    ("active_ended", 5),  # active, ended 1-2 days ago: past_due + renewal issued
    ("past_due_done", 5),  # past_due, grace over: expired
    ("canceling_ended", 5),  # cancel_at_period_end, period over: canceled
    ("canceling_far", 5),  # cancel_at_period_end, ends later: nothing
    ("expired", 10),  # already expired: nothing
    ("pending_stale", 5),  # pending, its first checkout is 2 days old: checkout expired + never_paid
]


def setup_django(keep: bool):
    import django
    from django.conf import settings

    django.setup()
    from django.db import connection

    if connection.vendor != "postgresql":
        sys.exit("bench/sweep.py needs PostgreSQL: set DATABASE_URL=postgres://...")
    base = settings.DATABASES["default"]["NAME"]
    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = f"{base}_bench_sweep"
    settings.EMAIL_BACKEND = "django.core.mail.backends.dummy.EmailBackend"
    # The sweep queues its renewal e-mails for the worker (in-memory broker
    # here, no worker): measured is the sweep, not SMTP. The rendering cost is
    # measured separately below.
    from config.celery import app

    app.conf.task_always_eager = False
    app.conf.broker_url = "memory://"
    name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    print(f"database {name} created and migrated", flush=True)
    return base


def copy_rows(cursor, table: str, columns: list[str], rows) -> int:
    buffer = io.StringIO()
    count = 0
    for row in rows:
        buffer.write("\t".join("\\N" if v is None else str(v) for v in row) + "\n")
        count += 1
    buffer.seek(0)
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        while chunk := buffer.read(1 << 20):
            copy.write(chunk)
    return count


def load(rows: int, now, tag: str) -> dict:
    from django.db import connection

    from billing.fields import encrypt
    from billing.models import Plan

    started = time.monotonic()
    monthly = Plan.objects.create(name=f"Mensal {tag}", price_cents=2990, duration_days=30)
    quarterly = Plan.objects.create(name=f"Trimestral {tag}", price_cents=7990, duration_days=90)
    cpf = encrypt("52998224725")
    kinds = [kind for kind, share in MIX for _ in range(share)]
    expected = {kind: 0 for kind, _ in MIX}
    day = timedelta(days=1)

    with connection.cursor() as cursor:
        cursor.execute("SELECT COALESCE(MAX(id), 0) FROM accounts_user")
        first_user = cursor.fetchone()[0] + 1
        copy_rows(
            cursor,
            "accounts_user",
            ["id", "password", "is_superuser", "email", "name", "is_staff", "is_active", "created_at"],
            ((first_user + i, "!", "f", f"bench{tag}-{i}@example.com", f"Bench {i}", "f", "t", now.isoformat()) for i in range(rows)),
        )
        cursor.execute("SELECT setval(pg_get_serial_sequence('accounts_user', 'id'), %s)", [first_user + rows])
        cursor.execute("SELECT COALESCE(MAX(id), 0) FROM billing_subscription")
        first_sub = cursor.fetchone()[0] + 1

        subs, checkouts = [], []
        for i in range(rows):
            kind = kinds[i % 100]
            expected[kind] += 1
            plan = quarterly if i % 7 == 0 else monthly
            duration = timedelta(days=90 if plan is quarterly else 30)
            cancel = "f"
            status = "active"
            reason = "paid"
            if kind == "active_far":
                end = now + day * (10 + i % 70)
            elif kind == "active_due":
                end = now + day * (1 + i % 2) + timedelta(hours=i % 20)
            elif kind == "active_ended":
                end = now - day * (1 + i % 2)
            elif kind == "past_due_done":
                end, status, reason = now - day * (4 + i % 10), "past_due", "grace_started"
            elif kind == "canceling_ended":
                end, cancel, reason = now - timedelta(hours=1 + i % 40), "t", "canceled_by_user"
            elif kind == "canceling_far":
                end, cancel, reason = now + day * (5 + i % 20), "t", "canceled_by_user"
            elif kind == "expired":
                end, status, reason = now - day * (20 + i % 100), "expired", "expired"
            else:  # pending_stale
                end, status, reason = None, "pending", "created"
            start = end - duration if end else None
            sub_id = first_sub + i
            subs.append(
                (
                    sub_id, first_user + i, plan.pk, status, start.isoformat() if start else None,
                    end.isoformat() if end else None, cancel, "", None, None, "", "checkout", reason,
                    now.isoformat(), None, None, now.isoformat(), now.isoformat(),
                )
            )
            purpose, c_status, paid_at, created = "new", "paid", (start or now).isoformat(), (start or now).isoformat()
            if kind == "pending_stale":
                c_status, paid_at, created = "pending", None, (now - day * 2).isoformat()
            elif i % 3:
                continue  # a paid checkout for a third of the others
            checkouts.append(
                (
                    str(uuid.uuid4()), first_user + i, plan.pk, purpose, sub_id, "pix", plan.price_cents, 0, 0,
                    plan.price_cents, "[]", f"Bench {i}", f"bench{tag}-{i}@example.com", cpf, "11987654321", "", "",
                    c_status, paid_at, "f", created, now.isoformat(), "", "",
                )
            )
        copy_rows(
            cursor,
            "billing_subscription",
            [
                "id", "user_id", "plan_id", "status", "start_date", "end_date", "cancel_at_period_end", "cancel_reason",
                "canceled_at", "next_plan_id", "external_id", "plan_match_rule", "last_reason", "last_transition_at",
                "renewal_issued_for", "sweep_claim", "created_at", "updated_at",
            ],
            subs,
        )
        cursor.execute("SELECT setval(pg_get_serial_sequence('billing_subscription', 'id'), %s)", [first_sub + rows])
        copy_rows(
            cursor,
            "billing_checkout",
            [
                "public_id", "user_id", "plan_id", "purpose", "subscription_id", "payment_method", "plan_price_cents",
                "bumps_cents", "credit_cents", "total_cents", "items", "customer_name", "customer_email",
                "customer_document", "customer_phone", "gateway_transaction_id", "gateway_status", "status", "paid_at",
                "is_late", "created_at", "updated_at", "pix_code", "pix_url",
            ],
            checkouts,
        )
        cursor.execute("ANALYZE")
    print(
        f"loaded {rows:,} subscriptions, {rows:,} users, {len(checkouts):,} checkouts "
        f"in {time.monotonic() - started:.1f}s ({rows / (time.monotonic() - started):,.0f} subscriptions/s)",
        flush=True,
    )
    return expected


def run_sweep(label: str, now) -> tuple:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from billing.services import sweep_subscriptions

    steps = []
    with CaptureQueriesContext(connection) as queries:
        started = time.monotonic()
        result = sweep_subscriptions(now=now, progress=lambda step, count: steps.append((step, time.monotonic())))
        seconds = time.monotonic() - started
    print(
        f"{label}: {result.rows_changed:,} rows changed, {len(queries)} queries, {seconds:.2f}s  [{result.summary()}]",
        flush=True,
    )
    previous = started
    timings = []
    for step, at in steps:
        timings.append(f"{step} {at - previous:.2f}s")
        previous = at
    print("    steps: " + ", ".join(timings), flush=True)
    if os.environ.get("BENCH_VERBOSE"):
        for q in sorted(queries.captured_queries, key=lambda q: -float(q["time"]))[:8]:
            print(f"    {float(q['time']):7.3f}s  {q['sql'][:150]}")
    return result, len(queries), seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    args = parser.parse_args()

    base = setup_django(args.keep)
    from django.db import connection
    from django.utils import timezone

    now = timezone.now()
    try:
        small = max(args.rows // 10, 100)
        load(small, now, "s")
        _, small_queries, _ = run_sweep(f"sweep over {small:,}", now)
        with connection.cursor() as cursor:  # start the big run from an empty table
            cursor.execute("TRUNCATE billing_checkout, billing_subscription, accounts_user CASCADE")

        expected = load(args.rows, now, "b")
        first, big_queries, seconds = run_sweep(f"sweep over {args.rows:,}", now)
        _, again_queries, _ = run_sweep("second sweep, same moment", now + timedelta(seconds=1))

        from billing.models import Checkout
        from billing.notifications import send_renewal_notices

        sample = [
            [c.customer_email, c.customer_name, c.plan.name, c.total_cents, str(c.public_id), c.subscription.end_date.isoformat()]
            for c in Checkout.objects.filter(purpose="renewal").select_related("plan", "subscription")[:2000]
        ]
        started = time.monotonic()
        send_renewal_notices(notices=sample)
        per_mail = (time.monotonic() - started) / max(len(sample), 1) * 1000
        print(f"renewal e-mail rendering (worker side): {per_mail:.2f} ms per e-mail over {len(sample):,}")

        want = {
            "renewals_issued": expected["active_due"] + expected["active_ended"],
            "past_due": expected["active_ended"],
            "expired": expected["past_due_done"],
            "canceled_at_period_end": expected["canceling_ended"],
            "checkouts_expired": expected["pending_stale"],
            "never_paid": expected["pending_stale"],
        }
        got = {key: getattr(first, key) for key in want}
        print(f"expected {want}")
        print(f"summary: {args.rows:,} subscriptions, {first.rows_changed:,} rows changed, {big_queries} queries, "
              f"{seconds:.2f}s; {small_queries} queries at {small:,} rows, {again_queries} on the second run")
        ok = got == want and big_queries == small_queries
        print("OK: counts as expected; query count independent of rows" if ok else f"MISMATCH: got {got}")
        return 0 if ok else 1
    finally:
        if not args.keep:
            connection.creation.destroy_test_db(base, verbosity=0)


if __name__ == "__main__":
    sys.exit(main())
