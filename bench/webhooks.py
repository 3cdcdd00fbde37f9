"""
Webhook throughput benchmark (issue 4).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/cf_payments python bench/webhooks.py

What it does, all on loopback and bounded in time:

1. Uses a throwaway PostgreSQL database `<your database>_bench` (created when
   missing, migrated, emptied): your own data is never touched.
2. Creates one plan, an active JunglePay gateway and N pending checkouts,
   each with a JunglePay transaction id (default N = 1,000).
3. Starts a fake JunglePay (a threaded HTTP server in this process) that
   answers `GET /transactions/{id}` with the transaction, paid.
4. Starts the app under gunicorn (gthread) pointed at that fake.
5. Sends 2·N paid postbacks (each checkout's postback twice, shuffled) from 8
   concurrent senders, and prints events per second and p50/p99 latency.
6. Checks that exactly N subscriptions are active and N checkouts paid, that
   every request was answered 200, and that no event failed.

Exit status 0 when the checks hold, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SECRET_KEY = "bench-only-secret-key-" + "x" * 40
# A fixed Fernet key for the bench database only (both processes must agree on it).
FIELD_ENCRYPTION_KEY = "YmVuY2gtb25seS1maWVsZC1lbmNyeXB0aW9uLWtleSE="
JUNGLEPAY_SECRET = "sk_bench_0000"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bench_database_url(base: str) -> tuple[str, str, str]:
    match = re.match(r"^(postgres(?:ql)?://[^/]*)/([^?]+)(\?.*)?$", base)
    if not match:
        sys.exit("bench/webhooks.py needs DATABASE_URL=postgres://.../<db> (the benchmark runs on PostgreSQL)")
    server, name, query = match.group(1), match.group(2), match.group(3) or ""
    return f"{server}/{name}_bench{query}", f"{server}/postgres{query}", f"{name}_bench"


def ensure_database(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url.replace("postgresql://", "postgres://"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


# ---------------------------------------------------------------------------
# The fake JunglePay
# ---------------------------------------------------------------------------


class FakeJunglePay:
    def __init__(self, transactions: dict[str, dict]):
        self.transactions = transactions
        self.requests = 0
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                with fake.lock:
                    fake.requests += 1
                match = re.match(r"^/v1/transactions/([^/?]+)$", self.path)
                data = fake.transactions.get(match.group(1)) if match else None
                body = json.dumps(data if data else {"message": "not found"}).encode()
                self.send_response(200 if data else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------------------
# Setup through the ORM
# ---------------------------------------------------------------------------


def setup_django(env: dict) -> None:
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def prepare_data(count: int) -> tuple[str, list[dict], dict[str, dict]]:
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from billing.models import Checkout, PaymentGateway, Plan

    call_command("migrate", verbosity=0, interactive=False)
    tables = ["billing_webhookevent", "billing_reconciliationitem", "billing_checkout_order_bumps", "billing_checkout",
              "billing_subscription", "billing_paymentgateway", "billing_orderbump", "billing_plan"]
    from django.contrib.auth import get_user_model

    tables.append(get_user_model()._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")

    plan = Plan.objects.create(name="Bench mensal", price_cents=2990, duration_days=30)
    gateway = PaymentGateway.objects.create(kind="junglepay", secret_key=JUNGLEPAY_SECRET, is_active=True)
    now = timezone.now()
    checkouts = [
        Checkout(
            public_id=uuid.uuid4(),
            plan=plan,
            plan_price_cents=2990,
            plan_duration_days=30,
            total_cents=2990,
            items=[{"title": plan.name, "unit_price_cents": 2990, "quantity": 1}],
            customer_name=f"Cliente {n}",
            customer_email=f"bench{n}@example.com",
            customer_document="52998224725",
            customer_phone="11987654321",
            gateway=gateway,
            gateway_transaction_id=str(100000 + n),
            gateway_status="waiting_payment",
            created_at=now,
        )
        for n in range(count)
    ]
    Checkout.objects.bulk_create(checkouts, batch_size=500)
    paid_at = now.isoformat()
    transactions, postbacks = {}, []
    for n, checkout in enumerate(checkouts):
        data = {
            "id": 100000 + n,
            "status": "paid",
            "amount": 2990,
            "externalRef": str(checkout.public_id),
            "paidAt": paid_at,
            "paymentMethod": "pix",
            "pix": {"qrcode": "000201bench", "expirationDate": now.date().isoformat()},
        }
        transactions[str(100000 + n)] = data
        postbacks.append({"id": 700000 + n, "type": "transaction", "objectId": str(100000 + n), "data": data})
    connection.close()
    return gateway.postback_token, postbacks, transactions


def verify(count: int) -> dict:
    from django.db import connection

    from billing.models import Checkout, Subscription, WebhookEvent

    connection.close()
    figures = {
        "active_subscriptions": Subscription.objects.filter(status="active").count(),
        "subscriptions": Subscription.objects.count(),
        "paid_checkouts": Checkout.objects.filter(status="paid").count(),
        "events": WebhookEvent.objects.count(),
        "failed_events": WebhookEvent.objects.filter(outcome="failed").count(),
    }
    return figures


# ---------------------------------------------------------------------------
# gunicorn and the senders
# ---------------------------------------------------------------------------


def start_gunicorn(env: dict, *, workers: int, threads: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    gunicorn = Path(sys.executable).with_name("gunicorn")
    proc = subprocess.Popen(
        [str(gunicorn), "config.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
         "--worker-class", "gthread", "--threads", str(threads), "--log-level", "warning", "--timeout", "60"],
        cwd=ROOT, env={**os.environ, **env}, start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    import requests

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"gunicorn exited with {proc.returncode}")
        try:
            if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                return proc, base
        except requests.RequestException:
            time.sleep(0.3)
    stop(proc)
    sys.exit("gunicorn did not become healthy within 60 s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def send_all(base: str, token: str, deliveries: list[dict], *, senders: int, deadline: float) -> tuple[list[float], dict, float]:
    import requests

    local = threading.local()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    url = f"{base}/api/webhook/junglepay?token={token}"

    def send(body: dict) -> None:
        if time.monotonic() > deadline:
            status, elapsed = -1, 0.0
        else:
            session = getattr(local, "session", None) or requests.Session()
            local.session = session
            start = time.perf_counter()
            try:
                status = session.post(url, data=json.dumps(body), headers={"Content-Type": "application/json"}, timeout=30).status_code
            except requests.RequestException:
                status = 0
            elapsed = time.perf_counter() - start
        with lock:
            statuses[status] = statuses.get(status, 0) + 1
            if status > 0:
                latencies.append(elapsed)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=senders) as pool:
        list(pool.map(send, deliveries))
    return latencies, statuses, time.perf_counter() - started


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))
    return ordered[index]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkouts", type=int, default=1000)
    parser.add_argument("--senders", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--time-limit", type=float, default=300, help="seconds; deliveries after it are skipped")
    args = parser.parse_args()

    database_url, admin_url, name = bench_database_url(os.environ.get("DATABASE_URL", ""))
    ensure_database(admin_url, name)
    app_env = {
        "DEBUG": "false",
        "SECRET_KEY": SECRET_KEY,
        "FIELD_ENCRYPTION_KEY": FIELD_ENCRYPTION_KEY,
        "DATABASE_URL": database_url,
        "REDIS_URL": os.environ.get("REDIS_URL", ""),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "false",
        "STATICFILES_BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage",
        "EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend",
        "THROTTLE_WEBHOOK": "1000000/min",
        "LOG_LEVEL": "ERROR",
        "JUNGLEPAY_SECRET_KEY": "",
    }
    setup_django(app_env)
    print(f"preparing {args.checkouts} checkouts in {name} ...", flush=True)
    token, postbacks, transactions = prepare_data(args.checkouts)
    deliveries = postbacks + postbacks
    random.Random(args.seed).shuffle(deliveries)

    with FakeJunglePay(transactions) as fake:
        app_env["JUNGLEPAY_API_URL"] = fake.url
        proc, base = start_gunicorn(app_env, workers=args.workers, threads=args.threads)
        try:
            print(
                f"sending {len(deliveries)} postbacks ({args.checkouts} checkouts × 2, shuffled) "
                f"with {args.senders} senders to gunicorn ({args.workers}×{args.threads} gthread) ...",
                flush=True,
            )
            latencies, statuses, elapsed = send_all(
                base, token, deliveries, senders=args.senders, deadline=time.monotonic() + args.time_limit
            )
        finally:
            stop(proc)
        fetches = fake.requests

    figures = verify(args.checkouts)
    answered = sum(count for status, count in statuses.items() if status > 0)
    print(f"events/s      : {answered / elapsed:,.0f}  ({answered} answered in {elapsed:.1f} s)")
    print(f"latency p50   : {percentile(latencies, 50) * 1000:.1f} ms")
    print(f"latency p99   : {percentile(latencies, 99) * 1000:.1f} ms")
    print(f"mean          : {statistics.fmean(latencies) * 1000:.1f} ms" if latencies else "mean: n/a")
    print(f"HTTP statuses : {dict(sorted(statuses.items()))}")
    print(f"gateway GETs  : {fetches} (one per first delivery; duplicates are answered from the event store)")
    print(f"database      : {figures}")
    ok = (
        figures["active_subscriptions"] == args.checkouts
        and figures["subscriptions"] == args.checkouts
        and figures["paid_checkouts"] == args.checkouts
        and figures["events"] == args.checkouts
        and figures["failed_events"] == 0
        and statuses == {200: len(deliveries)}
    )
    print(("OK" if ok else "FAILED") + f": {figures['active_subscriptions']} active subscriptions for {args.checkouts} checkouts")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
