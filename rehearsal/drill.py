"""
The fault drill (`make drill`, issue 23): the production shape on a PostgreSQL and a Redis of its own, so it
can kill and restart them, and five faults under buyers' traffic. Each fault prints what it counted
(charges at the gateway, paid checkouts, active subscriptions, webhook events, e-mails) and fails on any
loss or duplicate.

- a private PostgreSQL cluster (initdb/pg_ctl as the `postgres` user when run as root) and a private
  redis-server (append-only file, so it comes back with its data), both on free loopback ports;
- gunicorn (config/gunicorn_conf.py, 2 workers), a celery worker and celery beat, DEBUG off;
- the tests' fake JunglePay, which pays a charge and posts the postback to the site, and an SMTP sink.

Faults: a Celery worker SIGKILLed while paid postbacks are processed (restarted 5 s later); PostgreSQL
restarted under checkouts and postbacks; Redis down for a minute under checkouts, payments and polls;
two beat processes at once; the gateway failing, then back. The broker's visibility timeout is
shortened (CELERY_VISIBILITY_TIMEOUT=90, TASK_RETRY_WAIT_MAX=25) so a killed worker's tasks come back
within the run; production keeps 10 minutes.

    .venv/bin/python -m rehearsal.drill [--buyers 30] [--redis-down 60]
"""

import argparse
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import psycopg
import requests
from cryptography.fernet import Fernet

from rehearsal.fakes import PayingJunglePay, SmtpSink
from rehearsal.procs import Processes, free_port, wait_until
from rehearsal.run import valid_cpf

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
VISIBILITY_TIMEOUT = 90
BIRTH_DATE = "1990-05-17"


class DrillFailed(Exception):
    pass


def _as_postgres_user(argv: list[str]) -> list[str]:
    """initdb and pg_ctl refuse root: run them as the `postgres` system user then."""
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", "postgres", "--", *argv]


class PrivatePostgres:
    def __init__(self, base: Path):
        self.dir = base / "pg"
        self.port = free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/creatorflix"

    def _pg(self, *args, check=True):
        return subprocess.run(_as_postgres_user(["pg_ctl", "-D", str(self.dir), *args]), capture_output=True, text=True, check=check, timeout=120)

    def create(self):
        self.dir.mkdir(parents=True)
        if os.geteuid() == 0:
            postgres = pwd.getpwnam("postgres")
            os.chown(self.dir.parent, postgres.pw_uid, postgres.pw_gid)
            os.chown(self.dir, postgres.pw_uid, postgres.pw_gid)
        subprocess.run(_as_postgres_user(["initdb", "-D", str(self.dir), "-U", "postgres", "--auth=trust", "-E", "UTF8"]), capture_output=True, check=True, timeout=120)
        self.start()
        with psycopg.connect(f"postgres://postgres@127.0.0.1:{self.port}/postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE creatorflix")

    def start(self):
        self._pg("-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1", "-l", str(self.dir / "server.log"), "-w", "start")

    def stop(self):
        self._pg("-m", "fast", "-w", "stop", check=False)


class PrivateRedis:
    def __init__(self, base: Path):
        self.dir = base / "redis"
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = None

    def start(self):
        self.dir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes", "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        wait_until(lambda: _port_open(self.port), timeout=20, what="redis")

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)


def _port_open(port: int) -> bool:
    import socket  # only here

    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


class Drill:
    def __init__(self, args):
        self.args = args
        self.base_dir = Path(tempfile.mkdtemp(prefix="cf-drill-"))
        self.log_dir = ROOT / ".rehearsal-cache" / "drill"
        shutil.rmtree(self.log_dir, ignore_errors=True)
        self.log_dir.mkdir(parents=True)
        self.procs = Processes(cwd=ROOT, log_dir=self.log_dir)
        self.pg = PrivatePostgres(self.base_dir)
        self.redis = PrivateRedis(self.base_dir)
        self.web_port = free_port()
        self.base = f"http://127.0.0.1:{self.web_port}"
        self.smtp = SmtpSink(free_port())
        self.gateway = PayingJunglePay()
        self.results: list[tuple[str, bool, dict]] = []
        self.buyer_seq = 0
        self.plan_id = None

    # --- the shape -------------------------------------------------------
    def boot(self):
        self.pg.create()
        self.redis.start()
        self.smtp.start()
        self.gateway.__enter__()
        self.env = {
            "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
            "HOME": os.environ.get("HOME", str(self.base_dir)),
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            "DEBUG": "false",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
            "ALLOWED_HOSTS": "127.0.0.1",
            "SITE_URL": self.base,
            "SECURE_SSL_REDIRECT": "false",
            "SESSION_COOKIE_SECURE": "false",
            "CSRF_COOKIE_SECURE": "false",
            "DATABASE_URL": self.pg.url,
            "REDIS_URL": self.redis.url,
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(self.smtp.controller.port),
            "JUNGLEPAY_API_URL": self.gateway.url,
            "STATICFILES_BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage",
            "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
            "TASK_RETRY_WAIT_MAX": "25",
            # The drill's buyers all come from 127.0.0.1: the per-address ceilings are not under test here.
            "THROTTLE_CHECKOUT": "100000/min",
            "THROTTLE_CHECKOUT_CUSTOMER": "100000/min",
            "THROTTLE_CHECKOUT_PIX": "100000/min",
            "THROTTLE_CHECKOUT_PIX_ADDRESS": "100000/min",
            "THROTTLE_WEBHOOK": "100000/min",
            "PROMETHEUS_MULTIPROC_DIR": str(self.base_dir / "prometheus"),
        }
        self.manage("migrate", "--noinput")
        self.manage("loaddata", str(ROOT / "rehearsal" / "seed.json"))
        self.manage("configure_gateway", "junglepay", "--secret-key", "sk_drill_" + secrets.token_hex(8), "--activate")
        self.plan_id = self.sql("SELECT id FROM billing_plan WHERE duration_days = 30 ORDER BY id LIMIT 1")[0][0]
        self.procs.start("gunicorn", [str(BIN / "gunicorn"), "-c", "config/gunicorn_conf.py", "config.wsgi:application", "--bind", f"127.0.0.1:{self.web_port}", "--workers", "2"], env=self.env)
        self.start_worker()
        self.start_beat("beat")
        wait_until(lambda: requests.get(f"{self.base}/healthz", timeout=5).status_code == 200, timeout=90, what="/healthz")

    def start_worker(self):
        worker = self.procs.start("worker", [str(BIN / "celery"), "-A", "config", "worker", "--loglevel=INFO", "--concurrency=2", "-n", f"drill-{time.monotonic_ns()}@%h"], env=self.env)
        wait_until(lambda: "ready." in worker.tail(400), timeout=90, what="the celery worker")
        return worker

    def start_beat(self, name: str):
        return self.procs.start(name, [str(BIN / "celery"), "-A", "config", "beat", "--loglevel=INFO", "--scheduler", "django_celery_beat.schedulers:DatabaseScheduler", "--pidfile", str(self.base_dir / f"{name}.pid")], env=self.env)

    def manage(self, *args):
        result = subprocess.run([str(BIN / "python"), "manage.py", *args], env=self.env, cwd=ROOT, capture_output=True, text=True, timeout=300)
        if result.returncode != 0:
            raise DrillFailed(f"manage.py {args[0]}: {result.stdout[-800:]}{result.stderr[-800:]}")
        return result.stdout

    def sql(self, query: str, *params):
        with psycopg.connect(self.pg.url, autocommit=True, connect_timeout=5) as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def close(self):
        self.procs.stop_all()
        for stop in (self.smtp.stop, lambda: self.gateway.__exit__(None, None, None), self.redis.stop, self.pg.stop):
            try:
                stop()
            except Exception:  # noqa: BLE001 - keep stopping the others
                pass
        shutil.rmtree(self.base_dir, ignore_errors=True)

    # --- a buyer ---------------------------------------------------------
    def retrying(self, call, *, ok=(200, 201), timeout=120.0):
        """A client that retries what the site refused for a moment (503 with Retry-After, a dropped connection)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                response = call()
                if response.status_code in ok:
                    return response
                last = f"{response.status_code} {response.text[:200]}"
            except requests.RequestException as exc:
                last = type(exc).__name__
            if time.monotonic() > deadline:
                raise DrillFailed(f"gave up after {timeout:.0f}s: {last}")
            time.sleep(1)

    def new_buyer(self, tag: str) -> dict:
        self.buyer_seq += 1
        n = self.buyer_seq
        body = {
            "plan_id": self.plan_id, "payment_method": "pix", "order_bump_ids": [], "name": f"Comprador {n}",
            "email": f"drill-{tag}-{n}@example.com", "cpf": valid_cpf(5000 + n), "phone": "11987654321", "birth_date": BIRTH_DATE,
        }
        created = self.retrying(lambda: requests.post(f"{self.base}/api/checkout/process", json=body, timeout=30))
        checkout_id = created.json()["checkout_id"]
        pix = self.retrying(lambda: requests.post(f"{self.base}/api/checkout/pix", json={"checkout_id": checkout_id}, timeout=30))
        return {"email": body["email"], "checkout_id": checkout_id, "transaction_id": pix.json()["transaction_id"]}

    def pay(self, buyer: dict) -> None:
        """JunglePay re-sends a postback until the site answers 2xx."""
        self.retrying(lambda: self.gateway.pay(int(buyer["transaction_id"])), ok=(200,))

    def poll(self, buyer: dict) -> str:
        return requests.get(f"{self.base}/api/checkout/{buyer['checkout_id']}", timeout=10).json()["status"]

    # --- counting --------------------------------------------------------
    def counts(self, buyers: list[dict]) -> dict:
        emails = [b["email"] for b in buyers]
        ids = [b["checkout_id"] for b in buyers]
        charges = Counter(t.get("externalRef") for t in self.gateway.transactions.values())
        refs = {row[0]: row[1] for row in self.sql("SELECT public_id::text, id FROM billing_checkout WHERE public_id::text = ANY(%s)", ids)}
        paid = self.sql("SELECT count(*) FROM billing_checkout WHERE public_id::text = ANY(%s) AND status = 'paid'", ids)[0][0]
        paid_per_email = self.sql("SELECT customer_email, count(*) FROM billing_checkout WHERE status = 'paid' AND customer_email = ANY(%s) GROUP BY 1", emails)
        active = self.sql(
            "SELECT count(*) FROM billing_subscription s JOIN accounts_user u ON u.id = s.user_id WHERE u.email = ANY(%s) AND s.status = 'active'", emails
        )[0][0]
        events = self.sql("SELECT outcome, count(*) FROM billing_webhookevent WHERE checkout_id = ANY(%s) GROUP BY 1", list(refs.values()))
        mail = Counter((str(m["To"]).lower(), str(m["Subject"])) for m in self.smtp.messages if str(m["To"]).lower() in emails)
        return {
            "buyers": len(buyers),
            # externalRef is the checkout's uuid: one charge per checkout, never two.
            "charges": sum(charges.get(checkout_id, 0) for checkout_id in ids),
            "double_charged": sum(1 for checkout_id in ids if charges.get(checkout_id, 0) > 1),
            "paid": paid,
            "paid_twice": sum(1 for _, n in paid_per_email if n > 1),
            "active": active,
            "events": dict(events),
            "emailed": len({to for to, _ in mail}),
            "emails": sum(mail.values()),
            "duplicate_emails": sum(n - 1 for n in mail.values() if n > 1),
        }

    def settled(self, buyers: list[dict], timeout: float) -> dict:
        """Wait until every buyer is paid, active and e-mailed (or the time is up), then count."""
        def done():
            counts = self.counts(buyers)
            return counts if counts["paid"] == counts["active"] == counts["emailed"] == len(buyers) else None

        try:
            return wait_until(done, timeout=timeout, what="every buyer paid, active and e-mailed", interval=2)
        except TimeoutError:
            return self.counts(buyers)

    def judge(self, name: str, counts: dict, extra_failures: list[str] = ()):
        failures = list(extra_failures)
        n = counts["buyers"]
        if counts["double_charged"]:
            failures.append(f"{counts['double_charged']} checkouts charged twice")
        if counts["paid"] != n or counts["active"] != n:
            failures.append(f"paid {counts['paid']}, active {counts['active']} of {n}")
        if counts["paid_twice"]:
            failures.append(f"{counts['paid_twice']} buyers paid twice")
        if counts["emailed"] != n:
            failures.append(f"{n - counts['emailed']} buyers got no e-mail")
        if counts["duplicate_emails"]:
            failures.append(f"{counts['duplicate_emails']} duplicate e-mails")
        ok = not failures
        self.results.append((name, ok, counts))
        print(f"{'PASS' if ok else 'FAIL'}  {name}\n      {counts}" + ("" if ok else f"\n      {'; '.join(failures)}"), flush=True)

    # --- the faults ------------------------------------------------------
    def worker_killed_during_postbacks(self):
        started = time.monotonic()
        buyers = [self.new_buyer("worker") for _ in range(self.args.buyers)]
        half = len(buyers) // 2
        for buyer in buyers[:half]:
            self.pay(buyer)
        worker = next(p for p in self.procs.started if p.name == "worker")
        os.killpg(worker.pid, signal.SIGKILL)  # mid-stream: its prefetched and running tasks are unacked
        self.procs.started.remove(worker)
        payer = threading.Thread(target=lambda: [self.pay(b) for b in buyers[half:]])
        payer.start()
        time.sleep(5)
        self.start_worker()
        payer.join()
        counts = self.settled(buyers, timeout=VISIBILITY_TIMEOUT + 90)
        counts["seconds"] = round(time.monotonic() - started)
        self.judge("a Celery worker SIGKILLed while paid postbacks are processed, restarted 5 s later", counts)

    def database_restarted(self):
        started = time.monotonic()
        buyers, errors = [], []

        def traffic():
            try:
                for _ in range(self.args.buyers // 2):
                    buyer = self.new_buyer("db")
                    buyers.append(buyer)
                    self.pay(buyer)
            except Exception as exc:  # noqa: BLE001 - counted as a failure below
                errors.append(repr(exc))

        thread = threading.Thread(target=traffic)
        thread.start()
        time.sleep(3)
        self.pg.stop()
        time.sleep(8)
        self.pg.start()
        thread.join()
        counts = self.settled(buyers, timeout=120)
        counts["seconds"] = round(time.monotonic() - started)
        self.judge("PostgreSQL stopped 8 s under checkouts and postbacks", counts, errors)

    def redis_down(self):
        started = time.monotonic()
        before = [self.new_buyer("redis") for _ in range(10)]
        for buyer in before:
            assert self.poll(buyer) == "pending"  # cached now
        self.redis.stop()
        down_at = time.monotonic()
        during = [self.new_buyer("redis") for _ in range(5)]
        for buyer in before[:5] + during:
            self.pay(buyer)
        polls_during = Counter(self.poll(b) for b in before + during)
        time.sleep(max(0, self.args.redis_down - (time.monotonic() - down_at)))
        self.redis.start()
        time.sleep(2)
        expected = {b["checkout_id"]: ("paid" if b in before[:5] + during else "pending") for b in before + during}
        stale = [b["checkout_id"] for b in before + during if self.poll(b) != expected[b["checkout_id"]]]
        for buyer in before[5:]:
            self.pay(buyer)
        counts = self.settled(before + during, timeout=120)
        counts.update({"seconds": round(time.monotonic() - started), "redis_down_s": self.args.redis_down, "polls_during_outage": dict(polls_during), "stale_after_return": len(stale)})
        self.judge(f"Redis stopped {self.args.redis_down} s under checkouts, payments and polls, back with its data", counts, [f"{len(stale)} polls stale after Redis returned"] if stale else [])

    def two_beats(self):
        started = time.monotonic()
        self.sql("UPDATE django_celery_beat_intervalschedule SET every = 3 WHERE id = (SELECT interval_id FROM django_celery_beat_periodictask WHERE task = 'billing.tasks.sweep_subscriptions')")
        self.sql("UPDATE django_celery_beat_periodictasks SET last_update = now()")
        subs = self.sql("UPDATE billing_subscription SET end_date = now() + interval '2 days' WHERE status = 'active' RETURNING id")
        ids = [row[0] for row in subs]
        second = self.start_beat("beat-2")
        time.sleep(25)
        renewals = self.sql("SELECT subscription_id, count(*) FROM billing_checkout WHERE purpose = 'renewal' AND subscription_id = ANY(%s) GROUP BY 1", ids)
        runs = sum(p.log_path.read_text(errors="replace").count("billing.tasks.sweep_subscriptions") for p in self.procs.started if p.name.startswith("beat"))
        second.stop()
        self.procs.started.remove(second)
        per_sub = Counter(n for _, n in renewals)
        emails = Counter(str(m["To"]).lower() for m in self.smtp.messages if "renov" in str(m["Subject"]).lower() or "renew" in str(m["Subject"]).lower())
        counts = {"subscriptions": len(ids), "renewal_checkouts": sum(n for _, n in renewals), "subscriptions_renewed_twice": sum(v for k, v in per_sub.items() if k > 1),
                  "renewal_emails": sum(emails.values()), "duplicate_renewal_emails": sum(n - 1 for n in emails.values() if n > 1), "sweeps_sent_by_beats": runs,
                  "seconds": round(time.monotonic() - started)}
        failures = []
        if counts["renewal_checkouts"] != len(ids) or counts["subscriptions_renewed_twice"]:
            failures.append("not exactly one renewal checkout per subscription")
        if counts["duplicate_renewal_emails"] or counts["renewal_emails"] != len(ids):
            failures.append("not exactly one renewal e-mail per subscription")
        ok = not failures
        self.results.append(("two beat processes at once", ok, counts))
        print(f"{'PASS' if ok else 'FAIL'}  two beat processes at once\n      {counts}" + ("" if ok else f"\n      {'; '.join(failures)}"), flush=True)

    def gateway_down(self):
        started = time.monotonic()
        self.gateway.create_mode = "fail_before_create"
        threading.Timer(20, lambda: setattr(self.gateway, "create_mode", "ok")).start()
        buyers = [self.new_buyer("gateway") for _ in range(10)]
        for buyer in buyers:
            self.pay(buyer)
        counts = self.settled(buyers, timeout=120)
        counts["seconds"] = round(time.monotonic() - started)
        self.judge("the gateway failing (500) for 20 s, then back", counts)

    def run(self):
        self.boot()
        faults = (self.gateway_down, self.worker_killed_during_postbacks, self.database_restarted, self.redis_down, self.two_beats)
        for fault in faults:
            if self.args.only and fault.__name__ not in self.args.only:
                continue
            try:
                fault()
            except Exception as exc:  # noqa: BLE001 - one fault's crash is its failure; the next still runs
                self.results.append((fault.__name__, False, {"error": repr(exc)[:300]}))
                print(f"FAIL  {fault.__name__}: {exc!r}", flush=True)
        print("\n== drill ==")
        for name, ok, counts in self.results:
            print(f"{'pass' if ok else 'FAIL'}  {name}: {counts}")
        return all(ok for _, ok, _ in self.results)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--buyers", type=int, default=30)
    parser.add_argument("--redis-down", type=int, default=60, help="seconds Redis stays down")
    parser.add_argument("--only", nargs="*", default=[], help="run only these faults (gateway_down, worker_killed_during_postbacks, database_restarted, redis_down, two_beats)")
    args = parser.parse_args(argv)
    drill = Drill(args)

    def on_signal(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    started = time.monotonic()
    try:
        ok = drill.run()
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001
        print(f"drill crashed: {exc!r}")
        for process in drill.procs.started:
            print(f"\n--- last lines of {process.name} ---\n{process.tail(15)}")
        ok = False
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        drill.close()
    print(f"{'PASSED' if ok else 'FAILED'} in {time.monotonic() - started:.0f} s (logs in {drill.log_dir.relative_to(ROOT)}/)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
