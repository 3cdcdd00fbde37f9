"""
Checkout event streams (`GET /api/checkout/events/<id>`): what an open stream
costs and how fast a payment reaches it, on one uvicorn process.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/8 \
        .venv/bin/python bench/events.py [--streams 1000] [--pay-seconds 10]

It creates its own database (cf_bench_events, or BENCH_EVENTS_DB), migrates,
creates `--streams` guest checkouts, starts `uvicorn config.asgi:application`
(one process, DEBUG off) on the given Redis, and opens one stream per checkout
(raw asyncio sockets, as many browsers would). Then:

1. memory: the uvicorn process's RSS before the streams and with all of them
   open (after `connected`), per stream;
2. paid → seen: this process pays every checkout through `activate_checkout`
   (the code a postback runs), spread evenly over `--pay-seconds`, and each
   stream records when `payment_confirmed` arrives: p50/p95/p99/max of
   "activate_checkout called → event read by the client".
"""

import argparse
import asyncio
import os
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import psycopg
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def prepare_database(base_url: str, name: str) -> str:
    parsed = urlparse(base_url)
    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return parsed._replace(path=f"/{name}").geturl()


async def open_stream(port: int, checkout_id: str, seen: dict, connected: asyncio.Event, counter: list):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET /api/checkout/events/{checkout_id} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n".encode())
    await writer.drain()
    buffer = b""
    announced = False
    while True:
        chunk = await reader.read(4096)
        if not chunk:
            break
        buffer += chunk
        if not announced and b"event: connected" in buffer:
            announced = True
            counter[0] += 1
            if counter[0] == counter[1]:
                connected.set()
        if b"event: payment_confirmed" in buffer:
            seen[checkout_id] = time.monotonic()
            break
    writer.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--pay-seconds", type=float, default=10.0)
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres") or not os.environ.get("REDIS_URL"):
        sys.exit("needs DATABASE_URL (PostgreSQL, any database: a bench one is created) and REDIS_URL")

    database_url = prepare_database(os.environ["DATABASE_URL"], os.environ.get("BENCH_EVENTS_DB", "cf_bench_events"))
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        "LOG_LEVEL": "WARNING",
    }
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    import django

    django.setup()
    from django.core.management import call_command
    from django.utils import timezone

    from billing.models import Checkout, Plan
    from billing.services import activate_checkout
    from config.celery import app

    app.conf.task_always_eager = True  # the set-password e-mails run here (locmem), nothing left in Redis
    call_command("migrate", verbosity=0)
    plan = Plan.objects.create(name="Mensal", price_cents=2990, duration_days=30)
    Checkout.objects.bulk_create(
        Checkout(
            plan=plan, plan_price_cents=2990, plan_duration_days=30, total_cents=2990, customer_name=f"Buyer {n}",
            customer_email=f"buyer{n}@bench.example", customer_document="52998224725", customer_phone="11987654321",
        )
        for n in range(args.streams)
    )
    ids = [str(checkout.public_id) for checkout in Checkout.objects.order_by("pk")]

    port = 18000 + os.getpid() % 1000
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "config.asgi:application", "--port", str(port), "--log-level", "warning", "--no-access-log"],
        cwd=ROOT, env=env,
    )
    try:
        import requests

        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
                requests.get(f"http://127.0.0.1:{port}/api/checkout/{ids[0]}", timeout=5)
                break
            except requests.RequestException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        time.sleep(1)
        before = rss_kb(server.pid)

        seen: dict[str, float] = {}
        paid_at: dict[str, float] = {}

        async def run():
            connected = asyncio.Event()
            counter = [0, len(ids)]
            started = time.monotonic()
            tasks = [asyncio.create_task(open_stream(port, checkout_id, seen, connected, counter)) for checkout_id in ids]
            try:
                await asyncio.wait_for(connected.wait(), 120)
            except TimeoutError:
                sys.exit(f"only {counter[0]} of {counter[1]} streams connected within 120 s")
            opened = time.monotonic() - started
            await asyncio.sleep(2)
            during = rss_kb(server.pid)
            with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
                held = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()").fetchone()[0] - 1
            threads = len(list(Path(f"/proc/{server.pid}/task").iterdir()))
            print(f"while open: {held} PostgreSQL connections to the bench database (this process's included), {threads} threads in uvicorn")
            print(f"streams open: {len(ids)} in {opened:.1f} s; uvicorn RSS {before / 1024:.1f} MiB before, {during / 1024:.1f} MiB with them open: {(during - before) / len(ids):.1f} KiB per stream")

            def pay_all():
                gap = args.pay_seconds / len(ids)
                start = time.monotonic()
                for n, checkout in enumerate(Checkout.objects.order_by("pk")):
                    wait = start + n * gap - time.monotonic()
                    if wait > 0:
                        time.sleep(wait)
                    paid_at[str(checkout.public_id)] = time.monotonic()
                    activate_checkout(checkout=checkout, paid_at=timezone.now())

            await asyncio.to_thread(pay_all)
            done, pending = await asyncio.wait(tasks, timeout=60)
            for task in pending:
                task.cancel()

        asyncio.run(run())
        latencies = sorted((seen[i] - paid_at[i]) * 1000 for i in ids if i in seen and i in paid_at)
        quantiles = statistics.quantiles(latencies, n=100, method="inclusive")
        print(
            f"paid → seen over {len(latencies)}/{len(ids)} streams, {len(ids) / args.pay_seconds:.0f} payments/s: "
            f"p50 {quantiles[49]:.0f} ms, p95 {quantiles[94]:.0f} ms, p99 {quantiles[98]:.0f} ms, max {latencies[-1]:.0f} ms"
        )
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    main()
