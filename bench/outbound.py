"""
Outbound webhook delivery benchmark (issue 14).

    make bench-outbound        # DATABASE_URL / REDIS_URL as for the other benches

All on loopback, bounded in time (a few minutes), stops by itself:

1. A throwaway PostgreSQL database `<your database>_outbound` (created when
   missing, migrated, its outbox emptied) and one active webhook endpoint.
2. A local receiver in its own process (a threaded HTTP/1.1 server) that checks
   every signature and records when each event id first arrived.
3. The floor, in the same run: the same receiver fed by two processes that POST
   10,000 signed bodies through a `requests.Session`, as the outbox's worker
   does, without a database or a queue. What delivery costs on top of HTTP is the gap.
4. A real Celery worker (prefork, 2 processes, Redis broker) and the production
   path: `integrations.outbox.emit` writes the events in transactions of two
   (`payment.paid` + `subscription.activated` of one customer, as activation
   does), the commit queues the delivery task, the worker POSTs.
   - burst: 10,000 events written as fast as one connection can; prints events/s
     from the first write to the last arrival, and its ratio to the floor;
   - paced: events at half the burst rate for --paced-seconds; prints the delay
     from the state change (the event's `created_at`, its transaction) to the
     receiver, p50/p95/p99: the delay a CRM sees in normal traffic.
5. Checks: every event arrived, with a valid signature, each delivery is
   `delivered` with one attempt; exits 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.webhooks import bench_database_url, ensure_database, free_port

ENV = {
    "DEBUG": "false",
    "SECRET_KEY": "bench-only-secret-key-" + "x" * 40,
    "FIELD_ENCRYPTION_KEY": "YmVuY2gtb25seS1maWVsZC1lbmNyeXB0aW9uLWtleSE=",
    "ALLOWED_HOSTS": "127.0.0.1",
    "LOG_LEVEL": "WARNING",
    "SECURE_SSL_REDIRECT": "false",
}
SECRET = "whsec_bench_outbound_0123456789"


# ---------------------------------------------------------------------------
# The receiver (its own process)
# ---------------------------------------------------------------------------


def run_receiver(port: int, secret: str) -> None:
    from integrations.outbox import sign

    arrivals: dict[str, float] = {}
    stats = {"requests": 0, "bad_signature": 0}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a receiver behind any web server offers
        disable_nagle_algorithm = True
        wbufsize = 64 * 1024  # headers and body leave in one segment (flushed after each request)

        def log_message(self, *args):
            pass

        def _answer(self, body: bytes, status=200):
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            arrived = time.time()
            body = self.rfile.read(int(self.headers["Content-Length"]))
            header = self.headers.get("X-CreatorFlix-Signature", "t=0,v1=")
            timestamp = int(dict(item.split("=", 1) for item in header.split(","))["t"])
            valid = sign(secret, timestamp=timestamp, body=body) == header
            event_id = json.loads(body)["id"]
            with lock:
                stats["requests"] += 1
                stats["bad_signature"] += not valid
                arrivals.setdefault(event_id, arrived)
            self._answer(b'{"ok":true}')

        def do_GET(self):
            if self.path == "/count":
                with lock:
                    self._answer(json.dumps({"events": len(arrivals), **stats}).encode())
            elif self.path == "/arrivals":
                with lock:
                    self._answer(json.dumps(arrivals).encode())
            else:
                self._answer(b"{}", 404)

        def do_DELETE(self):
            with lock:
                arrivals.clear()
                stats.update(requests=0, bad_signature=0)
            self._answer(b"{}")

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server.serve_forever()


def receiver_call(base: str, method: str, path: str) -> dict:
    import requests

    return requests.request(method, base + path, timeout=10).json()


def wait_for_events(base: str, count: int, *, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        state = receiver_call(base, "GET", "/count")
        if state["events"] >= count or time.monotonic() > deadline:
            return state
        time.sleep(0.05)


# ---------------------------------------------------------------------------
# The floor: bare signed POSTs, two processes
# ---------------------------------------------------------------------------


def _floor_sender(url: str, bodies: list[bytes]) -> None:
    import requests

    from integrations.outbox import sign

    session = requests.Session()  # as the outbox's worker keeps one
    for body in bodies:
        headers = {"Content-Type": "application/json", "X-CreatorFlix-Signature": sign(SECRET, timestamp=int(time.time()), body=body)}
        session.post(url, data=body, headers=headers, timeout=10, allow_redirects=False)


def measure_floor(base: str, count: int, sample: dict) -> float:
    bodies = [json.dumps({"id": str(uuid.uuid4()), "type": "payment.paid", "created_at": "", "data": sample}).encode() for _ in range(count)]
    halves = [bodies[0::2], bodies[1::2]]
    receiver_call(base, "DELETE", "/")
    started = time.monotonic()
    senders = [multiprocessing.Process(target=_floor_sender, args=(base + "/hook", half)) for half in halves]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()
    elapsed = time.monotonic() - started
    assert receiver_call(base, "GET", "/count")["events"] == count
    return count / elapsed


# ---------------------------------------------------------------------------
# The production path
# ---------------------------------------------------------------------------


def sample_data(n: int) -> dict:
    """A checkout as payment.paid carries it (integrations.outbox data), ~700 bytes of JSON."""
    return {
        "checkout_id": str(uuid.uuid4()), "status": "paid", "purpose": "new", "total_amount": 2990, "currency": "BRL",
        "paid_at": "2026-01-01T12:00:00+00:00", "plan": {"id": 1, "name": "Mensal"},
        "subscription": {"id": n, "plan": {"id": 1, "name": "Mensal"}, "status": "active", "start_date": "2026-01-01T12:00:00+00:00",
                         "end_date": "2026-01-31T12:00:00+00:00", "cancel_at_period_end": False},
        "customer": {"name": f"Cliente {n}", "email": f"cliente{n}@example.com", "phone": "11987654321"},
        "tracking": {"utm_source": "instagram", "utm_campaign": "lancamento"},
    }


def emit_pair(n: int) -> None:
    from django.db import transaction
    from django.utils import timezone

    from integrations.outbox import emit

    with transaction.atomic():
        now = timezone.now()
        data = sample_data(n)
        emit("payment.paid", data=data, ordering_key=f"bench:{n}", now=now)
        emit("subscription.activated", data=data["subscription"], ordering_key=f"bench:{n}", now=now)


def created_at_of(ids) -> dict[str, float]:
    from integrations.models import OutboxEvent

    return {str(pk): created.timestamp() for pk, created in OutboxEvent.objects.filter(pk__in=list(ids)).values_list("pk", "created_at")}


def delays(base: str) -> list[float]:
    arrivals = receiver_call(base, "GET", "/arrivals")
    created = created_at_of(arrivals)
    return sorted(arrivals[i] - created[i] for i in arrivals if i in created)


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def start_worker(env: dict) -> subprocess.Popen:
    worker = subprocess.Popen(
        [str(Path(sys.executable).parent / "celery"), "-A", "config", "worker", "--loglevel=INFO", "--concurrency=2",
         "--pool=prefork", "-n", f"bench-outbound-{os.getpid()}@%h"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    deadline = time.monotonic() + 60
    for line in worker.stdout:
        if "ready." in line:
            threading.Thread(target=lambda: [None for _ in worker.stdout], daemon=True).start()  # keep draining
            return worker
        if time.monotonic() > deadline:
            break
    raise SystemExit("the celery worker did not start")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--paced-seconds", type=int, default=20)
    args = parser.parse_args()

    base_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    redis_url = os.environ.get("REDIS_URL") or sys.exit("bench/outbound.py needs REDIS_URL (the Celery broker)")
    url, admin_url, name = bench_database_url(base_url)
    url = url.replace("_bench", "_outbound")
    name = name.replace("_bench", "_outbound")
    ensure_database(admin_url, name)
    env = {**os.environ, **ENV, "DATABASE_URL": url, "REDIS_URL": redis_url, "DJANGO_SETTINGS_MODULE": "config.settings"}
    os.environ.update(env)

    import django

    django.setup()
    import redis
    from django.core.management import call_command

    from integrations.models import Delivery, DeliveryAttempt, OutboxEvent, WebhookEndpoint

    call_command("migrate", verbosity=0)
    redis.Redis.from_url(redis_url).flushdb()  # the bench's own broker DB: no stale tasks
    OutboxEvent.objects.all().delete()
    WebhookEndpoint.objects.all().delete()

    port = free_port()
    receiver = multiprocessing.Process(target=run_receiver, args=(port, SECRET), daemon=True)
    receiver.start()
    base = f"http://127.0.0.1:{port}"
    wait_until = time.monotonic() + 10
    while True:
        try:
            receiver_call(base, "GET", "/count")
            break
        except Exception:  # not listening yet
            if time.monotonic() > wait_until:
                raise
            time.sleep(0.1)
    WebhookEndpoint.objects.create(url=base + "/hook", secret=SECRET, events=[])

    print(f"outbound webhooks: {args.events:,} events, a Celery worker (prefork ×2), receiver on 127.0.0.1:{port}", flush=True)
    floor = measure_floor(base, args.events, sample_data(0))
    print(f"floor   bare signed POSTs (a Session) from 2 processes      {floor:8.0f} events/s", flush=True)

    worker = start_worker(env)
    ok = True
    try:
        # burst
        receiver_call(base, "DELETE", "/")
        started = time.monotonic()
        for n in range(args.events // 2):
            emit_pair(n)
        written = time.monotonic() - started
        state = wait_for_events(base, args.events, timeout=600)
        elapsed = time.monotonic() - started
        rate = state["events"] / elapsed
        burst = delays(base)
        print(f"burst   {args.events:,} events written in {written:.1f} s ({args.events / written:.0f}/s), "
              f"delivered in {elapsed:.1f} s", flush=True)
        print(f"        delivered                                           {rate:8.0f} events/s   {rate / floor:.2f}× floor", flush=True)
        print(f"        delay state change → receiver  p50 {pct(burst, .5):6.2f} s  p99 {pct(burst, .99):6.2f} s  (a backlog: all written at once)", flush=True)
        ok &= state["events"] == args.events and state["bad_signature"] == 0

        # paced, at half the burst's delivery rate
        receiver_call(base, "DELETE", "/")
        pairs_per_second = max(rate / 2 / 2, 1)
        total_pairs = int(pairs_per_second * args.paced_seconds)
        started = time.monotonic()
        for n in range(total_pairs):
            target = started + n / pairs_per_second
            pause = target - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            emit_pair(args.events + n)
        paced_state = wait_for_events(base, total_pairs * 2, timeout=120)
        paced = delays(base)
        print(f"paced   {total_pairs * 2:,} events at {pairs_per_second * 2:.0f}/s for {args.paced_seconds} s", flush=True)
        print(f"        delay state change → receiver  p50 {pct(paced, .5) * 1000:6.0f} ms  p95 {pct(paced, .95) * 1000:6.0f} ms  "
              f"p99 {pct(paced, .99) * 1000:6.0f} ms", flush=True)
        ok &= paced_state["events"] == total_pairs * 2 and paced_state["bad_signature"] == 0

        total = args.events + total_pairs * 2
        delivered = Delivery.objects.filter(status=Delivery.Status.DELIVERED).count()
        attempts = DeliveryAttempt.objects.count()
        print(f"checks  {delivered:,}/{total:,} deliveries delivered, {attempts:,} attempts, "
              f"{state['bad_signature'] + paced_state['bad_signature']} bad signatures", flush=True)
        ok &= delivered == total and attempts == total
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
        receiver.terminate()
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
