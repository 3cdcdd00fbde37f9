"""
Launch benchmark (`make bench-launch`, issue 16): a creator's promo launch of PIX
buyers against the production shape of the rehearsal, on loopback only, bounded
in time and stopping by itself.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/7 \
        .venv/bin/python bench/launch.py [--rates 30,60,120,240,480] [--seconds-per-step 30]

It creates its own database (cf_bench_launch, or BENCH_LAUNCH_DB), migrates, loads the demo data,
points the site at the tests' fake JunglePay (in this process), and starts what
the rehearsal starts (rehearsal/procs.py): nginx → gunicorn (4 sync workers, as
the rehearsal's two nodes of 2; `--workers`), the postbacks' own sync workers
(`--postback-workers`, 2; 0 routes them to the page workers, as before), the
events server (uvicorn workers, `--events-workers`), DEBUG off, TRUSTED_PROXIES=1, and a Celery worker, on the
given Redis DB, with an SMTP sink. No LocalStack and no browser: media are local files.

1. Floors and capacities (wrk, 16 connections, a few seconds each, all through
   nginx): a bare `JsonResponse` (the floor, measured before and after the
   others), the status endpoint a waiting page polls, an anonymous creator page
   and post page (a visitor past the 18+ gate), and the API page of a creator as
   a subscriber sees it (an active subscription; demo media are local files, so
   its URLs are the access-checked view's, not presigned). Each as a ratio of
   the floor.
2. The launch: simulated buyers arrive at a rising rate (one step per rate).
   Each buyer is logged in (its session made at setup: a login's password hash
   is not what a launch waits on; of age, its birth date declared) and does what the real pages do: home, plans,
   the checkout page, `process`, `pix`, then waits for its payment as
   `static/js/checkout.js` does: it opens the event stream
   `GET /api/checkout/events/<id>` (served by the events server, uvicorn
   workers under gunicorn, routed by nginx as in production) and reads it until
   `payment_confirmed`; when the stream breaks (no `connected` within 5 s, an
   error, `timeout`) it falls back to polling `GET /api/checkout/<id>` on the
   page's POLL_SCHEDULE (read from the file), and counts that buyer as a
   fallback. `--listen poll` makes every buyer poll from the start (the page
   before the event stream), for comparison. The fake gateway pays each charge
   a random 10-40 s later through a real postback to nginx; then the buyer opens
   an unlocked post page with its media URLs.

Per step: buyers/min completed, concurrent waiters (open streams), requests/s by
kind, p50/p95/p99 of page requests (HTML) and of postback sent → "paid" seen by
the page, fallbacks, errors; the events server's memory with the streams of the
busiest moment open (per stream); and the first rate where page p99 passes 1 s
or errors appear (the run stops there). Figures are noisy on a shared machine:
read the ratios.
"""

import argparse
import heapq
import json
import math
import os
import random
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlparse

import psycopg
import requests
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rehearsal.fakes import PayingJunglePay, SmtpSink
from rehearsal.procs import Processes, free_port, wait_until

BIN = Path(sys.executable).parent
RUN_DIR = ROOT / ".bench-cache" / "launch"
# Its own database, dropped and recreated each run; BENCH_LAUNCH_DB names another one (two runs at once).
DB_NAME = os.environ.get("BENCH_LAUNCH_DB", "cf_bench_launch")
BUYERS = 3000  # logged-in buyers made at setup, more than any run uses
CPF = "52998224725"  # the status probe's
BIRTH_DATE = "1990-05-17"  # of age: the checkout asks every buyer for a birth date


def valid_cpf(seed: int) -> str:
    """A valid CPF per buyer (the checkout throttle counts per customer, as in production)."""
    rng = random.Random(seed)
    digits = [rng.randrange(10) for _ in range(9)]
    if len(set(digits)) == 1:
        digits[0] = (digits[0] + 1) % 10
    for length in (9, 10):
        check = (sum(d * (length + 1 - i) for i, d in enumerate(digits)) * 10) % 11
        digits.append(0 if check == 10 else check)
    return "".join(map(str, digits))


PAGE_P99_LIMIT = 1.0
POLL_GIVE_UP = 120  # seconds a buyer waits after the payment before counting it an error
# checkout-events.js: no `connected` this long after opening and the page takes the stream for broken.
CONNECT_WITHIN = 5.0
# The server's heartbeat is every 15 s: a read that waits longer than this means the stream is dead.
STREAM_READ_TIMEOUT = 45.0


def poll_schedule() -> list[tuple[float, float]]:
    """checkout.js's polling, as [(until_ms_since_start, every_ms), ...] (the last one open-ended)."""
    source = (ROOT / "static/js/checkout.js").read_text()
    match = re.search(r"POLL_SCHEDULE\s*=\s*(\[[^;]*\]);", source)
    if match:
        return [(float(until) or float("inf"), float(every)) for until, every in json.loads(match.group(1))]
    every = float(re.search(r"POLL_MS\s*=\s*(\d+)", source).group(1))
    return [(float("inf"), every)]


def poll_delay(schedule, since_start_ms: float) -> float:
    for until, every in schedule:
        if since_start_ms < until:
            return every / 1000
    return schedule[-1][1] / 1000


def percentile(values, q):
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


# ---------------------------------------------------------------------------
# Setup
# ---------------------------------------------------------------------------
def database_url(base_url: str, name: str) -> str:
    return urlparse(base_url)._replace(path="/" + name).geturl()


def manage(env, *args, log, input_text=None):
    result = subprocess.run(
        [str(BIN / "python"), "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        input=input_text,
        timeout=900,
        check=False,
    )
    (RUN_DIR / "logs" / f"{log}.log").open("a").write(result.stdout + result.stderr)
    if result.returncode:
        raise RuntimeError(
            f"manage.py {' '.join(args[:2])} exited {result.returncode}: {(result.stdout + result.stderr)[-1500:]}"
        )
    return result.stdout


SESSIONS_SCRIPT = """
import json
from datetime import date, timedelta
from django.contrib.auth import get_user_model, BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.hashers import make_password
from django.contrib.sessions.backends.db import SessionStore
from django.utils import timezone
from accounts.gate import SESSION_KEY as GATE_PASSED
from billing.models import Plan, Subscription
User = get_user_model()
now = timezone.now()
password = make_password("launch-buyer-password")  # one hash for all: setup, not the bench
# Of age, confirmed (they declared a birth date at sign-up): creator and post pages open for them.
users = User.objects.bulk_create([
    User(email=f"buyer{n}@launch.test", name=f"Comprador {n}", password=password,
         birth_date=date(1990, 5, 17), age_confirmed_at=now, age_confirmed_by="declaration")
    for n in range(%(count)d)
])
out = []
for user in User.objects.filter(email__endswith="@launch.test").order_by("pk"):
    store = SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.create()
    out.append({"email": user.email, "session": store.session_key})
# The last buyer is the subscriber whose API page is measured: an active subscription.
Subscription.objects.create(
    user=User.objects.get(email=out[-1]["email"]), plan=Plan.objects.order_by("pk").first(),
    status=Subscription.Status.ACTIVE, start_date=now, end_date=now + timedelta(days=30),
)
# A visitor who answered the 18+ gate ("I am 18 or older"), for the anonymous pages.
visitor = SessionStore()
visitor[GATE_PASSED] = True
visitor.create()
print("SESSIONS" + json.dumps({"buyers": out, "visitor": visitor.session_key}))
"""


class Site:
    """nginx → gunicorn, a Celery worker, an SMTP sink and the fake JunglePay, on loopback."""

    def __init__(self, *, workers: int, events_workers: int, postback_workers: int):
        self.workers, self.events_workers, self.postback_workers = workers, events_workers, postback_workers
        self.ports = {name: free_port() for name in ("nginx", "gunicorn", "postbacks", "events", "smtp")}
        self.base = f"http://127.0.0.1:{self.ports['nginx']}"
        self.procs = Processes(cwd=ROOT, log_dir=RUN_DIR / "logs")
        self.smtp = SmtpSink(self.ports["smtp"])
        self.gateway = PayingJunglePay()

    def env(self) -> dict:
        admin_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
        return {
            "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
            "HOME": os.environ.get("HOME", str(RUN_DIR)),
            "LANG": "C.UTF-8",
            "ADMIN_DATABASE_URL": admin_url,
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "PYTHONPATH": str(ROOT),
            "DEBUG": "false",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SITE_URL": self.base,
            "CSRF_TRUSTED_ORIGINS": self.base,
            "TRUSTED_PROXIES": "1",
            "DATABASE_URL": database_url(admin_url, DB_NAME),
            "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/7"),
            "CACHE_KEY_PREFIX": f"bench-launch-{os.getpid()}",
            "AWS_STORAGE_BUCKET_NAME": "",
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(self.ports["smtp"]),
            "JUNGLEPAY_API_URL": self.gateway.url,
            "LOG_LEVEL": "WARNING",
            # Every buyer comes from 127.0.0.1 here: lift the per-address limits, keep the rest.
            "THROTTLE_AUTH": "1000000/min",
            "THROTTLE_CHECKOUT": "1000000/min",
            "THROTTLE_CHECKOUT_PIX_ADDRESS": "1000000/min",
            "THROTTLE_WEBHOOK": "1000000/min",
        }

    def prepare(self, env) -> list[dict]:
        with psycopg.connect(
            env["ADMIN_DATABASE_URL"].replace("postgres://", "postgresql://"),
            autocommit=True,
        ) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{DB_NAME}"')
        for catalogue in [
            ROOT / "locale",
            *(ROOT / app / "locale" for app in ("accounts", "billing", "catalog", "whitelabel")),
        ]:
            if catalogue.is_dir():  # what `make compile-messages` does, without its install step
                subprocess.run(
                    [
                        str(BIN / "pybabel"),
                        "--quiet",
                        "compile",
                        "-D",
                        "django",
                        "-d",
                        str(catalogue),
                    ],
                    check=True,
                    capture_output=True,
                )
        manage(env, "migrate", "--noinput", log="setup")
        manage(env, "load_demo", "--force", log="setup")
        manage(env, "collectstatic", "--noinput", "-v", "0", log="setup")
        manage(
            env,
            "configure_gateway",
            "junglepay",
            "--secret-key",
            "sk_launch_" + secrets.token_hex(8),
            "--activate",
            log="setup",
        )
        out = manage(env, "shell", log="setup", input_text=SESSIONS_SCRIPT % {"count": BUYERS})
        return json.loads(out.split("SESSIONS", 1)[1])

    def start(self, env):
        self.smtp.start()
        self.gateway.__enter__()
        self.procs.start(
            "gunicorn",
            [
                str(BIN / "gunicorn"),
                "config.wsgi:application",
                "--bind",
                f"127.0.0.1:{self.ports['gunicorn']}",
                "--workers",
                str(self.workers),
                "--timeout",
                "60",
            ],
            # Each worker logs every request's CPU by route (bench/cpu_middleware.py), read by cpu_by_route().
            env={**env, "BENCH_CPU_LOG_DIR": str(self.cpu_log_dir())},
        )
        if self.postback_workers:
            # The postbacks: workers of their own, as in the rehearsal and docker-compose.yml (nginx: /api/webhook/).
            self.procs.start(
                "postbacks",
                [
                    str(BIN / "gunicorn"),
                    "config.wsgi:application",
                    "--bind",
                    f"127.0.0.1:{self.ports['postbacks']}",
                    "--workers",
                    str(self.postback_workers),
                    "--timeout",
                    "60",
                ],
                env={**env, "BENCH_CPU_LOG_DIR": str(self.cpu_log_dir())},
            )
        # The event streams: their own ASGI server, as in the rehearsal and docker-compose.yml.
        self.procs.start(
            "events",
            [
                str(BIN / "gunicorn"),
                "config.asgi:application",
                "--worker-class",
                "uvicorn_worker.UvicornWorker",
                "--bind",
                f"127.0.0.1:{self.ports['events']}",
                "--workers",
                str(self.events_workers),
                "--graceful-timeout",
                "5",
            ],
            env={**env, "DATABASE_POOL_SIZE": "8"},  # as docker-compose.yml's events service
        )
        tmp = RUN_DIR / "nginx-tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        os.chmod(tmp, 0o777)
        conf = (ROOT / "rehearsal/nginx.conf.template").read_text()
        for key, value in {
            "run_dir": str(RUN_DIR),
            "upstream_servers": f"server 127.0.0.1:{self.ports['gunicorn']};",
            "events_server": f"127.0.0.1:{self.ports['events']}",
            # --postback-workers 0: the postbacks queue with the pages, in the page workers (the site before).
            "postback_servers": f"server 127.0.0.1:{self.ports['postbacks' if self.postback_workers else 'gunicorn']};",
            "nginx_port": str(self.ports["nginx"]),
        }.items():
            conf = conf.replace("{{" + key + "}}", value)
        (RUN_DIR / "nginx.conf").write_text(conf)
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        self.procs.start(
            "nginx",
            [nginx, "-p", str(RUN_DIR), "-c", str(RUN_DIR / "nginx.conf")],
            env={"PATH": os.environ.get("PATH", "")},
        )
        self.procs.start(
            "celery-worker",
            [
                str(BIN / "celery"),
                "-A",
                "config",
                "worker",
                "--loglevel=WARNING",
                "--concurrency=1",
                "-n",
                f"launch-{os.getpid()}@%h",
            ],
            env=env,
        )
        if self.postback_workers:
            wait_until(
                lambda: requests.get(f"http://127.0.0.1:{self.ports['postbacks']}/healthz", timeout=5).status_code == 200,
                timeout=90,
                what="the postbacks' /healthz",
                alive=self.procs.check_alive,
            )
        wait_until(
            lambda: requests.get(f"{self.base}/healthz", timeout=5).status_code == 200,
            timeout=90,
            what="/healthz through nginx",
            alive=self.procs.check_alive,
        )

    @staticmethod
    def cpu_log_dir() -> Path:
        path = RUN_DIR / "cpu"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def cpu_by_route(self, since: float) -> dict[str, list[float]]:
        """{route: [cpu ms of each request]} from the page workers' logs, for requests that ended after `since` (epoch)."""
        routes = defaultdict(list)
        for log in self.cpu_log_dir().glob("*.log"):
            for line in log.read_text().splitlines():
                route, cpu, _wall, ended = line.split()
                if float(ended) >= since:
                    routes[route].append(float(cpu))
        return routes

    def events_rss_kb(self) -> int:
        """Resident memory of the events server: its gunicorn master and every uvicorn worker."""
        master = next(p for p in self.procs.started if p.name == "events").pid
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        total = 0
        for pid in [master, *map(int, children)]:
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except FileNotFoundError:
                continue
            total += int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
        return total

    def stop(self):
        self.procs.stop_all()
        for stop in (self.smtp.stop, lambda: self.gateway.__exit__(None, None, None)):
            try:
                stop()
            except Exception as exc:  # noqa: BLE001 - keep stopping the others
                print(f"  could not stop a fake: {exc}")


# ---------------------------------------------------------------------------
# Floors and capacities
# ---------------------------------------------------------------------------
def wrk(url: str, *, seconds: int, cookie: str | None = None) -> float:
    argv = ["wrk", "-t2", "-c16", f"-d{seconds}s", "--latency"]
    if cookie:
        argv += ["-H", f"Cookie: {cookie}"]
    out = subprocess.run([*argv, url], capture_output=True, text=True, timeout=seconds + 30, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    if re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        raise RuntimeError(f"{url}: non-2xx answers under wrk:\n{out}")
    return rate


# ---------------------------------------------------------------------------
# The launch
# ---------------------------------------------------------------------------
class Launch:
    def __init__(self, site: Site, sessions: list[dict], catalog: dict, schedule, *, listen: str = "stream"):
        self.site, self.catalog, self.schedule, self.listen = site, catalog, schedule, listen
        self.sessions = iter(sessions)
        self.lock = threading.Lock()
        self.requests: list[tuple[float, str, float, bool]] = []  # (started, kind, seconds, ok)
        self.buyers: list[dict] = []
        self.waiting = 0
        self.paid_at: dict[str, float] = {}
        self.payments: list[tuple[float, int, str]] = []  # heap of (due, transaction, checkout)
        self.stop = threading.Event()
        self.payer = threading.Thread(target=self.pay_loop, daemon=True)

    # --- the fake gateway pays each charge 10-40 s after it was created ---
    def pay_loop(self):
        while not self.stop.is_set():
            with self.lock:
                due = self.payments[0] if self.payments and self.payments[0][0] <= time.monotonic() else None
                if due:
                    heapq.heappop(self.payments)
            if due is None:
                time.sleep(0.05)
                continue
            _, transaction, checkout = due
            with self.lock:
                self.paid_at[checkout] = time.monotonic()
            threading.Thread(target=self.postback, args=(transaction,), daemon=True).start()

    def postback(self, transaction):
        started = time.monotonic()
        try:
            ok = self.site.gateway.pay(transaction).status_code == 200
        except requests.RequestException:
            ok = False
        self.record(started, "postback", time.monotonic() - started, ok)

    def record(self, started, kind, seconds, ok):
        with self.lock:
            self.requests.append((started, kind, seconds, ok))

    def call(self, session, kind, method, path, **kwargs):
        started = time.monotonic()
        try:
            response = session.request(method, self.site.base + path, timeout=30, **kwargs)
            ok = response.status_code < 400
        except requests.RequestException:
            response, ok = None, False
        self.record(started, kind, time.monotonic() - started, ok)
        return response if ok else None

    def buyer(self, record):
        rng = random.Random()
        account = next(self.sessions)
        csrf = secrets.token_hex(16)
        session = requests.Session()
        session.cookies.set("sessionid", account["session"])
        session.cookies.set("csrftoken", csrf)
        post_headers = {
            "X-CSRFToken": csrf,
            "Origin": self.site.base,
            "Referer": self.site.base + "/",
        }
        plan = rng.choice(self.catalog["plans"])
        try:
            for path in ("/", "/plans/", f"/checkout/{plan}/"):
                if self.call(session, "page", "GET", path) is None:
                    return
            body = {
                "plan_id": plan,
                "payment_method": "pix",
                "order_bump_ids": [],
                "name": "Comprador Lançamento",
                "email": account["email"],
                "cpf": valid_cpf(hash(account["email"])),
                "phone": "11987654321",
                "birth_date": BIRTH_DATE,  # age assurance: the checkout asks for it
            }
            created = self.call(
                session,
                "checkout",
                "POST",
                "/api/checkout/process",
                json=body,
                headers=post_headers,
            )
            if created is None:
                return
            checkout = created.json()["checkout_id"]
            pix = self.call(
                session,
                "checkout",
                "POST",
                "/api/checkout/pix",
                json={"checkout_id": checkout},
                headers=post_headers,
            )
            if pix is None:
                return
            with self.lock:
                heapq.heappush(
                    self.payments,
                    (
                        time.monotonic() + rng.uniform(10, 40),
                        int(pix.json()["transaction_id"]),
                        checkout,
                    ),
                )
                self.waiting += 1
            try:
                record["checkout"] = checkout
                seen = self.listen == "stream" and self.wait_on_stream(session, checkout, record)
                if not seen:
                    record["fallback"] = self.listen == "stream"
                    seen = self.wait_by_polling(session, checkout)
                if not seen:
                    return
                record["paid_seen"] = seen - self.paid_at[checkout]
            finally:
                with self.lock:
                    self.waiting -= 1
            if (
                self.call(
                    session,
                    "page",
                    "GET",
                    f"/posts/{rng.choice(self.catalog['posts'])}/",
                )
                is None
            ):
                return
            record["done"] = time.monotonic()
        finally:
            record["finished"] = True

    def wait_on_stream(self, session, checkout, record) -> float | None:
        """
        checkout-events.js: the event stream until `payment_confirmed`. Returns when "paid" was read
        (monotonic), or None when the stream broke and the page would fall back to polling.
        """
        started = time.monotonic()
        event = None
        try:
            with session.get(
                f"{self.site.base}/api/checkout/events/{checkout}",
                headers={"Accept": "text/event-stream"},
                stream=True,
                timeout=(CONNECT_WITHIN, STREAM_READ_TIMEOUT),
            ) as response:
                if response.status_code != 200:
                    self.record(started, "stream", time.monotonic() - started, False)
                    return None
                connected = False
                for line in response.iter_lines(decode_unicode=True):
                    if self.stop.is_set():
                        return None
                    if line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:"):
                        status = json.loads(line[5:]).get("status")
                        if event == "connected" and not connected:
                            connected = True
                            record["connected_at"] = time.monotonic()
                            self.record(started, "stream", time.monotonic() - started, True)
                        if status == "paid":
                            return time.monotonic()
                        if event in {"payment_failed", "timeout"}:
                            return None
                    elif not connected and time.monotonic() - started > CONNECT_WITHIN:
                        return None  # the page's watchdog: no `connected` in time
        except (requests.RequestException, ValueError):
            pass
        if event is None:
            self.record(started, "stream", time.monotonic() - started, False)
        return None

    def wait_by_polling(self, session, checkout) -> float | None:
        """checkout.js's fallback: poll the status on its POLL_SCHEDULE. Returns when "paid" was read."""
        started = time.monotonic()
        while True:
            time.sleep(poll_delay(self.schedule, (time.monotonic() - started) * 1000))
            status = self.call(session, "poll", "GET", f"/api/checkout/{checkout}")
            if status is not None and status.json()["status"] == "paid":
                return time.monotonic()
            paid = self.paid_at.get(checkout)
            if paid and time.monotonic() - paid > POLL_GIVE_UP or self.stop.is_set():
                return None

    def run_step(self, rate: float, seconds: float) -> dict:
        start = time.monotonic()
        cpu_start = time.process_time()
        gap = 60 / rate
        n, waiters = 0, []
        while time.monotonic() - start < seconds:
            due = start + n * gap
            if time.monotonic() >= due:
                record = {"arrived": time.monotonic(), "rate": rate, "finished": False}
                self.buyers.append(record)
                threading.Thread(target=self.buyer, args=(record,), daemon=True).start()
                n += 1
            else:
                time.sleep(min(0.05, due - time.monotonic()))
            if not waiters or time.monotonic() - waiters[-1][0] >= 1:
                waiters.append((time.monotonic(), self.waiting, self.site.events_rss_kb()))
        busiest = max(waiters, key=lambda w: w[1])
        return {
            "rate": rate,
            "start": start,
            "end": time.monotonic(),
            "arrivals": n,
            "waiters": busiest[1],
            "events_rss_kb": busiest[2],
            # This process's CPU over the step (one core = 100%): near 100% the buyers, not the site, are the limit.
            "bench_cpu": (time.process_time() - cpu_start) / (time.monotonic() - start),
        }

    def report(self, step: dict) -> dict:
        with self.lock:
            window = [r for r in self.requests if step["start"] <= r[0] < step["end"]]
        elapsed = step["end"] - step["start"]
        buyers = [b for b in self.buyers if b["rate"] == step["rate"]]
        done = [b for b in buyers if b.get("done")]
        failed = [b for b in buyers if b["finished"] and not b.get("done")]
        pages = sorted(r[2] for r in window if r[1] == "page")
        polls = sorted(r[2] for r in window if r[1] == "poll")
        postbacks = sorted(r[2] for r in window if r[1] == "postback")
        seen = sorted(b["paid_seen"] for b in buyers if "paid_seen" in b)
        fallbacks = sum(1 for b in buyers if b.get("fallback"))
        by_kind = defaultdict(int)
        for r in window:
            by_kind[r[1]] += 1
        errors = sum(1 for r in window if not r[3]) + len(failed)
        return {
            "rate": step["rate"],
            "completed_per_min": len(done) * 60 / elapsed,
            "waiters": step["waiters"],
            "rps": {k: v / elapsed for k, v in sorted(by_kind.items())},
            "page": [percentile(pages, q) for q in (50, 95, 99)],
            "poll": [percentile(polls, q) for q in (50, 95, 99)],
            "postback": [percentile(postbacks, q) for q in (50, 95, 99)],
            "bench_cpu": step["bench_cpu"],
            "paid_seen": [percentile(seen, q) for q in (50, 95, 99)],
            "paid_seen_max": max(seen) if seen else float("nan"),
            "fallbacks": fallbacks,
            "events_rss_kb": step["events_rss_kb"],
            "errors": errors,
        }


def discover(base: str) -> dict:
    session = requests.Session()
    slugs = [m["slug"] for m in session.get(f"{base}/api/models", timeout=10).json()["results"]]
    posts = []
    for slug in slugs[:5]:
        posts += [p["id"] for p in session.get(f"{base}/api/models/{slug}/posts", timeout=10).json().get("results", [])]
    body = session.get(f"{base}/api/plans", timeout=10).json()
    plans = [p["id"] for p in (body["results"] if isinstance(body, dict) else body) if not p.get("checkout_url")]
    return {"slugs": slugs, "posts": posts, "plans": plans}


def print_cpu_by_route(routes: dict[str, list[float]], *, buyers: int):
    """Where the sync workers' CPU (pages and postbacks) went during the launch: by route, and per buyer who finished."""
    total = sum(sum(cpu) for cpu in routes.values())
    if not total:
        return
    print("\nsync workers' CPU during the launch, by route (bench/cpu_middleware.py; not PostgreSQL's, Redis's, nginx's):")
    print(f"{'route':<42} {'requests':>8} {'cpu ms mean':>11} {'p95':>7} {'share':>6}")
    for route, cpu in sorted(routes.items(), key=lambda item: -sum(item[1]))[:12]:
        print(
            f"{route[:42]:<42} {len(cpu):>8} {statistics.fmean(cpu):>11.1f} {percentile(sorted(cpu), 95):>7.1f} {sum(cpu) / total:>6.0%}"
        )
    if buyers:
        print(
            f"CPU per buyer who finished: {total / buyers:.0f} ms ({buyers} buyers; at 960/min that is {total / buyers * 16 / 1000:.2f} cores)"
        )


def ms(value: float) -> str:
    return "      -" if math.isnan(value) else f"{value * 1000:7.0f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default="30,60,120,240,480", help="buyers per minute, one step each")
    parser.add_argument("--seconds-per-step", type=float, default=30)
    parser.add_argument("--wrk-seconds", type=int, default=6)
    parser.add_argument(
        "--workers", type=int, default=4, help="gunicorn sync workers serving pages (the rehearsal: two nodes of 2)"
    )
    parser.add_argument("--events-workers", type=int, default=1, help="uvicorn workers serving event streams")
    parser.add_argument(
        "--postback-workers",
        type=int,
        default=2,
        help="sync workers of their own for the postbacks (the rehearsal's 2); 0: the page workers take them",
    )
    parser.add_argument(
        "--listen",
        choices=("stream", "poll"),
        default="stream",
        help="how a waiting buyer learns of its payment: the event stream (the page today) or polling only",
    )
    args = parser.parse_args()

    shutil.rmtree(RUN_DIR, ignore_errors=True)
    (RUN_DIR / "logs").mkdir(parents=True)
    site = Site(workers=args.workers, events_workers=args.events_workers, postback_workers=args.postback_workers)
    env = site.env()
    launch = None
    try:
        print(
            f"preparing {DB_NAME} (migrate, demo data, {BUYERS} logged-in buyers)...",
            flush=True,
        )
        prepared = site.prepare(env)
        sessions, visitor = prepared["buyers"], f"sessionid={prepared['visitor']}"
        site.start(env)
        catalog = discover(site.base)
        schedule = poll_schedule()
        print(
            f"nginx → gunicorn ({args.workers} sync workers; postbacks: {f'{args.postback_workers} workers of their own' if args.postback_workers else 'the same workers'})"
            f" + events server ({args.events_workers} uvicorn workers)"
            f" + celery worker; {len(catalog['slugs'])} creators, {len(catalog['posts'])} posts, plans {catalog['plans']}"
        )
        print(
            f"waiting buyers listen by: {'the event stream, polling if it breaks' if args.listen == 'stream' else 'polling only'}"
        )
        print(
            f"checkout.js polls: {', '.join(f'every {e / 1000:g} s' + ('' if u == float('inf') else f' until {u / 1000:g} s') for u, e in schedule)}"
        )

        # A pending checkout to poll, and a subscriber's session for the API page.
        subscriber = sessions.pop()
        unlocked = requests.get(
            f"{site.base}/api/models/{catalog['slugs'][0]}/posts",
            cookies={"sessionid": subscriber["session"]},
            timeout=10,
        ).json()["results"]
        if not unlocked or any(row["locked"] for row in unlocked):
            raise RuntimeError("the subscriber's API page is locked: it would measure the wrong page")
        probe = Launch(site, [sessions.pop()], catalog, schedule)
        probe_session = requests.Session()
        probe_session.cookies.set("csrftoken", "c" * 32)
        pending = probe_session.post(
            site.base + "/api/checkout/process",
            json={
                "plan_id": catalog["plans"][0],
                "payment_method": "pix",
                "order_bump_ids": [],
                "name": "Sonda Status",
                "email": "probe@launch.test",
                "cpf": CPF,
                "phone": "11987654321",
                "birth_date": BIRTH_DATE,
            },
            headers={"X-CSRFToken": "c" * 32, "Origin": site.base},
            timeout=30,
        ).json()["checkout_id"]
        del probe
        slug, post = catalog["slugs"][0], catalog["posts"][0]

        print("\n== floors and capacities (wrk -t2 -c16, through nginx) ==", flush=True)
        floor_before = wrk(f"{site.base}/bench/bare", seconds=args.wrk_seconds)
        figures = {
            "status endpoint (pending, anonymous)": wrk(f"{site.base}/api/checkout/{pending}", seconds=args.wrk_seconds),
            # A visitor past the 18+ gate (its answer is in the session), as one browsing the site is.
            "creator page (anonymous)": wrk(f"{site.base}/models/{slug}/", seconds=args.wrk_seconds, cookie=visitor),
            "post page (anonymous, locked)": wrk(f"{site.base}/posts/{post}/", seconds=args.wrk_seconds, cookie=visitor),
            "subscriber API page (logged in)": wrk(
                f"{site.base}/api/models/{slug}/posts",
                seconds=args.wrk_seconds,
                cookie=f"sessionid={subscriber['session']}",
            ),
        }
        floor_after = wrk(f"{site.base}/bench/bare", seconds=args.wrk_seconds)
        floor = (floor_before + floor_after) / 2
        print(f"{'floor: bare JsonResponse':<40} {floor:8.0f} req/s  (before {floor_before:.0f}, after {floor_after:.0f})")
        for name, rate in figures.items():
            print(f"{name:<40} {rate:8.0f} req/s  {rate / floor:5.2f}× floor")

        print("\n== the launch ==", flush=True)
        idle_rss = site.events_rss_kb()
        launch = Launch(site, sessions, catalog, schedule, listen=args.listen)
        launch_epoch = time.time()
        launch.payer.start()
        steps = []
        breaks_at = None
        for rate in [float(r) for r in args.rates.split(",")]:
            steps.append(launch.run_step(rate, args.seconds_per_step))
            row = launch.report(steps[-1])
            if row["page"][2] > PAGE_P99_LIMIT or row["errors"]:
                breaks_at = rate
                break
        # Let the last buyers finish (each waits at most 40 s for its payment, then a poll).
        deadline = time.monotonic() + 40 + 15
        while time.monotonic() < deadline and not all(b["finished"] for b in launch.buyers):
            time.sleep(0.5)
        launch.stop.set()
        # Every buyer's timeline (monotonic seconds), for reading a tail: when it arrived, its stream
        # answered `connected`, the gateway paid, and the page saw it.
        (RUN_DIR / "buyers.json").write_text(
            json.dumps([{**b, "paid_at": launch.paid_at.get(b.get("checkout"))} for b in launch.buyers], default=str)
        )
        print(
            f"{'rate/min':>8} {'done/min':>8} {'waiters':>7} {'page p50':>8} {'p95':>7} {'p99':>7} {'poll p50':>8} {'p99':>7} {'paid seen p50':>13} {'p95':>7} {'p99':>7} {'max':>7} {'postbk p50':>10} {'p99':>7} {'fallbk':>6} {'errors':>6} {'KiB/stream':>10} {'bench cpu':>9}   req/s by kind"
        )
        for step in steps:
            row = launch.report(step)
            kinds = " ".join(f"{k}={v:.0f}" for k, v in row["rps"].items())
            per_stream = (row["events_rss_kb"] - idle_rss) / row["waiters"] if row["waiters"] else float("nan")
            print(
                f"{row['rate']:>8.0f} {row['completed_per_min']:>8.0f} {row['waiters']:>7} {ms(row['page'][0])} {ms(row['page'][1])} {ms(row['page'][2])} "
                f"{ms(row['poll'][0])} {ms(row['poll'][2])} {ms(row['paid_seen'][0]):>13} {ms(row['paid_seen'][1])} {ms(row['paid_seen'][2])} {ms(row['paid_seen_max'])}"
                f" {ms(row['postback'][0]):>10} {ms(row['postback'][2])} {row['fallbacks']:>6} {row['errors']:>6} {per_stream:>10.1f}"
                f" {row['bench_cpu']:>9.0%}   {kinds}",
                flush=True,
            )
        print(
            f"events server: {idle_rss / 1024:.0f} MiB resident before the launch; 'KiB/stream' = (resident at the step's"
            " busiest second - that) / the waiters then (with --listen poll the streams are not opened)"
        )
        print_cpu_by_route(site.cpu_by_route(launch_epoch), buyers=sum(1 for b in launch.buyers if b.get("done")))
        sustained = [s["rate"] for s in steps if s["rate"] != breaks_at]
        print(
            "(ms; 'paid seen' = postback sent → the page reads \"paid\" (stream or poll); 'postbk' = the gateway's postback"
            " answered; 'fallbk' = buyers whose stream broke, who then polled; 'bench cpu' = this load generator's own CPU,"
            " one core = 100%; a step's requests are those started in it)"
        )
        print(
            f"breaks at: {breaks_at:.0f} buyers/min (page p99 > 1 s or errors)"
            if breaks_at
            else "breaks at: not reached within the rates run"
        )
        print(f"sustainable: {max(sustained):.0f} buyers/min" if sustained else "sustainable: below the first rate")
    finally:
        if launch is not None:
            launch.stop.set()
        site.stop()


if __name__ == "__main__":
    main()
