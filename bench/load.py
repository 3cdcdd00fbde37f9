"""
Load benchmark: a realistic traffic mix against gunicorn on PostgreSQL and Redis,
at rising concurrency, on loopback only, bounded in time.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/7 \
        .venv/bin/python bench/load.py [--seconds-per-step 12] [--steps 2,4,8,16,32] [--workers 2]

It creates its own database (cf_bench_load), migrates, loads the demo data, starts
gunicorn on 127.0.0.1, and drives this mix (weights in MIX):
  browsing  - home, creators, a creator page, a post page, plans
  api       - /api/models, /api/models/<slug>/posts, /api/plans
  checkout  - POST /api/checkout/process then POST /api/checkout/pix (sandbox gateway)
  webhook   - a sandbox payment notification for one of those checkouts (same path as a provider's)
For each step it prints throughput, p50/p95/p99 latency and error rate, and names the
first step where p99 passes 1 s or errors pass 1% ("breaks at").
"""

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlparse

import requests

ROOT = Path(__file__).resolve().parents[1]
PORT = 8765
BASE = f"http://127.0.0.1:{PORT}"
MIX = {"browse": 45, "api": 35, "checkout": 12, "webhook": 8}
CPFS = ["52998224725", "11144477735", "39053344705", "86288366757"]


def _database_url(base_url: str, name: str) -> str:
    parsed = urlparse(base_url)
    return parsed._replace(path="/" + name).geturl()


def prepare(env: dict) -> None:
    import psycopg

    admin_url = env["ADMIN_DATABASE_URL"]
    with psycopg.connect(admin_url.replace("postgres://", "postgresql://"), autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS cf_bench_load WITH (FORCE)")
        conn.execute("CREATE DATABASE cf_bench_load")
    run = lambda *args: subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True)
    run("migrate", "--noinput")
    run("load_demo", "--force")
    run("collectstatic", "--noinput")


def discover(session: requests.Session) -> dict:
    models = session.get(f"{BASE}/api/models", timeout=10).json()["results"]
    slugs = [m["slug"] for m in models] or ["none"]
    posts = []
    for slug in slugs[:5]:
        body = session.get(f"{BASE}/api/models/{slug}/posts", timeout=10).json()
        posts += [p["id"] for p in body.get("results", [])]
    body = session.get(f"{BASE}/api/plans", timeout=10).json()
    plans = [p for p in (body["results"] if isinstance(body, dict) else body) if not p.get("checkout_url")]
    return {"slugs": slugs, "posts": posts or [0], "plans": [p["id"] for p in plans]}


class Worker(threading.Thread):
    def __init__(self, catalog, stop_at, results, pending_checkouts, lock):
        super().__init__(daemon=True)
        self.catalog, self.stop_at, self.results = catalog, stop_at, results
        self.pending, self.lock = pending_checkouts, lock
        self.session = requests.Session()
        self.rng = random.Random()

    def timed(self, kind, method, url, **kwargs):
        started = time.perf_counter()
        try:
            response = self.session.request(method, url, timeout=10, **kwargs)
            ok = response.status_code < 400 or response.status_code == 404
        except requests.RequestException:
            response, ok = None, False
        self.results.append((kind, time.perf_counter() - started, ok))
        return response

    def run(self):
        kinds, weights = zip(*MIX.items(), strict=True)
        while time.monotonic() < self.stop_at:
            kind = self.rng.choices(kinds, weights)[0]
            getattr(self, kind)()

    def browse(self):
        slug = self.rng.choice(self.catalog["slugs"])
        path = self.rng.choice(["/", "/models/", f"/models/{slug}/", f"/posts/{self.rng.choice(self.catalog['posts'])}/", "/plans/"])
        self.timed("browse", "GET", BASE + path)

    def api(self):
        slug = self.rng.choice(self.catalog["slugs"])
        path = self.rng.choice(["/api/models", f"/api/models/{slug}/posts", "/api/plans"])
        self.timed("api", "GET", BASE + path)

    def checkout(self):
        n = self.rng.randrange(10**9)
        body = {
            "plan_id": self.rng.choice(self.catalog["plans"]),
            "payment_method": "pix",
            "order_bump_ids": [],
            "name": "Cliente Carga",
            "email": f"load{n}@example.com",
            "cpf": self.rng.choice(CPFS),
            "phone": "11987654321",
        }
        response = self.timed("checkout", "POST", f"{BASE}/api/checkout/process", json=body)
        if response is None or response.status_code != 201:
            return
        checkout_id = response.json()["checkout_id"]
        response = self.timed("checkout", "POST", f"{BASE}/api/checkout/pix", json={"checkout_id": checkout_id})
        if response is not None and response.status_code == 200:
            with self.lock:
                self.pending.append(checkout_id)

    def webhook(self):
        with self.lock:
            checkout_id = self.pending.pop() if self.pending else None
        if checkout_id is None:
            return self.api()
        self.timed("webhook", "POST", f"{BASE}/api/checkout/{checkout_id}/simulate", json={"outcome": "paid"})


def percentile(values, q):
    if not values:
        return float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds-per-step", type=float, default=12)
    parser.add_argument("--steps", default="2,4,8,16,32")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    base_db = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    env = {
        **os.environ,
        "ADMIN_DATABASE_URL": base_db,
        "DATABASE_URL": _database_url(base_db, "cf_bench_load"),
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/7"),
        "DEBUG": "false",
        "SECRET_KEY": "bench-" + "s" * 50,
        "FIELD_ENCRYPTION_KEY": "ZmFrZS1iZW5jaC1rZXktMzItYnl0ZXMtbG9uZy0xMjM=",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "false",
        "SESSION_COOKIE_SECURE": "false",
        "CSRF_COOKIE_SECURE": "false",
        "SANDBOX_GATEWAY_ALLOWED": "true",
        "SITE_URL": BASE,
        "LOG_LEVEL": "WARNING",
        # One client IP sends everything here: lift the per-IP limits, keep everything else.
        "THROTTLE_AUTH": "1000000/min",
        "THROTTLE_CHECKOUT": "1000000/min",
        "THROTTLE_WEBHOOK": "1000000/min",
    }
    print("preparing database cf_bench_load (migrate, demo data, static files)...", flush=True)
    prepare(env)
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{PORT}",
         "--workers", str(args.workers), "--log-level", "warning"],
        cwd=ROOT, env=env, start_new_session=True,
    )
    try:
        session = requests.Session()
        for _ in range(100):
            try:
                if session.get(f"{BASE}/healthz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        catalog = discover(session)
        print(f"gunicorn: {args.workers} sync workers; catalog: {len(catalog['slugs'])} creators, {len(catalog['posts'])} posts sampled; mix {MIX}")
        print(f"{'users':>5} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>7}   per kind req/s")
        breaks_at = None
        pending, lock = [], threading.Lock()
        for users in [int(s) for s in args.steps.split(",")]:
            results = []
            stop_at = time.monotonic() + args.seconds_per_step
            workers = [Worker(catalog, stop_at, results, pending, lock) for _ in range(users)]
            started = time.monotonic()
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            elapsed = time.monotonic() - started
            latencies = sorted(r[1] * 1000 for r in results)
            errors = sum(1 for r in results if not r[2])
            by_kind = defaultdict(int)
            for kind, _, _ in results:
                by_kind[kind] += 1
            rate = len(results) / elapsed
            p99 = percentile(latencies, 99)
            error_rate = errors / max(1, len(results))
            kinds = " ".join(f"{k}={v / elapsed:.0f}" for k, v in sorted(by_kind.items()))
            print(f"{users:>5} {rate:>8.1f} {percentile(latencies, 50):>8.1f} {percentile(latencies, 95):>8.1f} {p99:>8.1f} {error_rate:>6.1%}   {kinds}", flush=True)
            if breaks_at is None and (p99 > 1000 or error_rate > 0.01):
                breaks_at = users
        print(f"breaks at: {breaks_at} users (p99 > 1 s or errors > 1%)" if breaks_at else "breaks at: not reached within the steps run")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
