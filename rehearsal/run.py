"""
The production rehearsal (`make rehearsal`, issue 12).

Boots the production shape on this machine without a Docker engine, from the
project's own files: nginx → two web nodes (two gunicorn masters, 2 workers each,
DEBUG off, generated keys, TRUSTED_PROXIES=1), the postbacks' own workers, two celery workers + beat (django-celery-beat's database
scheduler) on the machine's Redis (a DB number of its own), a fresh
PostgreSQL database, LocalStack S3 with signature checks on, an SMTP sink and
a fake JunglePay that posts real postbacks to nginx. Then headless Chromium
buys a subscription through nginx, and the run checks that beat, on its own,
synced the white-label bucket and swept subscriptions. Last, both nodes must have
served the journey, no access log may show the postback token, /metrics answers, and
a backup of the database restores into a new one with the same rows (and a clean
`audit_money` there, when the command exists).

It talks to the site only over HTTP, through the browser and through
management commands, so it does not depend on how the apps are laid out
inside. Every step prints pass/fail and seconds; any failure exits non-zero.
Every process started is stopped by its pid, also on SIGINT/SIGTERM.

    .venv/bin/python -m rehearsal.run [--keep-logs]
"""

import argparse
import io
import json
import os
import random
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import traceback
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import psycopg
import redis
import requests
from botocore.config import Config
from cryptography.fernet import Fernet
from PIL import Image, ImageDraw
from requests.adapters import HTTPAdapter
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from billing.cards import make_test_card_hash
from rehearsal.fakes import PayingJunglePay, SmtpSink, body_text
from rehearsal.procs import Processes, Stopped, free_port, http_ok, wait_until

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".rehearsal-cache"
RUN_DIR = CACHE / "run"
LOG_DIR = RUN_DIR / "logs"
BIN = Path(sys.executable).parent
ASSETS = Path(__file__).resolve().parent / "assets"

# tool-facts.md: LocalStack's S3 checks SigV4 signatures; it needs Python 3.13 and these pins.
LOCALSTACK_PYTHON = os.environ.get("REHEARSAL_PYTHON313", "/root/.pyenv/versions/3.13.0/bin/python")
LOCALSTACK_VENV = CACHE / "localstack-venv"
LOCALSTACK_PINS = ["localstack-core[runtime]", "cbor2<6", "pyopenssl<24.3", "cryptography>=41.0.5,<44", "service_identity"]

PG_ADMIN_URL = os.environ.get("REHEARSAL_PG", "postgres://postgres@127.0.0.1:5432/postgres")
DB_NAME = os.environ.get("REHEARSAL_DB", "creatorflix_rehearsal")
RESTORE_DB = f"{DB_NAME}_restore"
WEB_NODES = ("web-a", "web-b")
# The payment providers' postbacks: the same app on workers of its own, routed by nginx (/api/webhook/).
POSTBACKS = "postbacks"
CELERY_WORKERS = ("worker-a", "worker-b")
REDIS_BASE = os.environ.get("REHEARSAL_REDIS", "redis://127.0.0.1:6379")
REDIS_DB = int(os.environ.get("REHEARSAL_REDIS_DB", "9"))

WL_BUCKET = "creatorflix-whitelabel"
MEDIA_BUCKET = "creatorflix-media"
# Names with spaces and accents: the presigned URLs must percent-encode them the way S3 signs them.
CREATOR = "Luna Ribeiro Ensaios"
POST = "Ensaio no estúdio"
LATE_CREATOR = "Bruna Álvares"
BEAT_EVERY = 8  # seconds: beat's shortened interval for the sync and the sweep
BUYER = {"name": "Maria Ensaio", "email": "maria.ensaio@example.com", "password": "uma-senha-bem-forte-42", "birth_date": "1990-05-17"}

CHROME_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--lang=pt-BR",
    "--autoplay-policy=no-user-gesture-required",
]


class StepFailed(Exception):
    pass


# ---------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------
class Report:
    def __init__(self):
        self.started = time.monotonic()
        self.rows: list[tuple[str, bool, float, str]] = []
        self.figures: dict[str, str] = {}

    @contextmanager
    def step(self, name: str):
        start = time.monotonic()
        note: list[str] = []
        try:
            yield note
        except Exception as exc:
            elapsed = time.monotonic() - start
            detail = f"{type(exc).__name__}: {exc}"
            self.rows.append((name, False, elapsed, detail))
            print(f"FAIL {elapsed:7.1f}s  {name}\n      {detail}", flush=True)
            raise StepFailed(name) from exc
        elapsed = time.monotonic() - start
        self.rows.append((name, True, elapsed, "; ".join(note)))
        print(f"pass {elapsed:7.1f}s  {name}" + (f"  ({'; '.join(note)})" if note else ""), flush=True)

    def figure(self, name: str, value: str):
        self.figures[name] = value

    def summary(self) -> bool:
        ok = bool(self.rows) and all(row[1] for row in self.rows)
        total = time.monotonic() - self.started
        print("\n== rehearsal report ==")
        for name, passed, elapsed, _detail in self.rows:
            print(f"{'pass' if passed else 'FAIL'} {elapsed:7.1f}s  {name}")
        if self.figures:
            print("-- figures --")
            for name, value in self.figures.items():
                print(f"{name}: {value}")
        print(f"{'PASSED' if ok else 'FAILED'}: {sum(r[1] for r in self.rows)}/{len(self.rows)} steps in {total:.0f}s")
        return ok


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------
def run(argv, *, env=None, log: str, timeout=600, check=True) -> subprocess.CompletedProcess:
    """A one-off command (manage.py, apt-get, pip); its output goes to a log, and into the error when it fails."""
    result = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    with open(LOG_DIR / f"{log}.log", "a") as out:
        out.write(f"$ {' '.join(map(str, argv))}\n{result.stdout}{result.stderr}\n")
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, argv[:3]))} exited {result.returncode}: {(result.stdout + result.stderr)[-1500:]}")
    return result


def manage(env, *args, log="manage", **kwargs):
    return run([str(BIN / "python"), "manage.py", *args], env=env, log=log, **kwargs)


def apt_install(packages: list[str]) -> None:
    if os.geteuid() != 0:
        raise RuntimeError(f"missing {' '.join(packages)}: run `sudo apt-get install -y {' '.join(packages)}`")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run(["apt-get", "update", "-qq"], env=env, log="apt", timeout=900)
    run(["apt-get", "install", "-y", "-qq", *packages], env=env, log="apt", timeout=1200)


def find_binary(*names) -> str | None:
    for name in names:
        path = shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.path.exists(p)), None)
        if path:
            return path
    return None


def valid_cpf(seed: int) -> str:
    rng = random.Random(seed)
    digits = [rng.randrange(10) for _ in range(9)]
    if len(set(digits)) == 1:
        digits[0] = (digits[0] + 1) % 10
    for length in (9, 10):
        total = sum(d * (length + 1 - i) for i, d in enumerate(digits))
        check = (total * 10) % 11
        digits.append(0 if check == 10 else check)
    return "".join(map(str, digits))


def jpeg(label: str, color: tuple[int, int, int], size=(640, 400)) -> bytes:
    image = Image.new("RGB", size, color)
    ImageDraw.Draw(image).text((20, 20), label, fill=(255, 255, 255))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=80)
    return out.getvalue()


class SourceAddressAdapter(HTTPAdapter):
    """Requests from another loopback address (127.0.0.N): another visitor, as nginx sees it."""

    def __init__(self, source: str, **kwargs):
        self.source = source
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.source, 0)
        super().init_poolmanager(*args, **kwargs)


def visitor(source: str) -> requests.Session:
    session = requests.Session()
    adapter = SourceAddressAdapter(source)
    session.mount("http://", adapter)
    return session


# ---------------------------------------------------------------------------
# The rehearsal
# ---------------------------------------------------------------------------
class Rehearsal:
    def __init__(self, report: Report):
        self.report = report
        self.procs = Processes(cwd=ROOT, log_dir=LOG_DIR)
        self.ports = {name: free_port() for name in ("nginx", *WEB_NODES, POSTBACKS, "events", "s3", "smtp")}
        self.base = f"http://127.0.0.1:{self.ports['nginx']}"
        self.s3_internal = f"http://127.0.0.1:{self.ports['s3']}"
        # The browser reaches S3 by another name than the site does (AWS_S3_PUBLIC_ENDPOINT_URL).
        self.s3_public = f"http://localhost:{self.ports['s3']}"
        self.smtp: SmtpSink | None = None
        self.gateway: PayingJunglePay | None = None
        self.driver = None
        self.env: dict = {}

    # --- lifecycle -------------------------------------------------------
    def close(self):
        if self.driver is not None:
            try:
                self.driver.quit()
            except Exception:  # noqa: BLE001
                pass
            self.driver = None
        self.procs.stop_all()
        for fake in (self.smtp, self.gateway):
            if fake is not None:
                try:
                    fake.stop() if isinstance(fake, SmtpSink) else fake.__exit__(None, None, None)
                except Exception:  # noqa: BLE001
                    pass
        self.smtp = self.gateway = None

    def alive(self):
        self.procs.check_alive()

    # --- steps -----------------------------------------------------------
    def tools(self):
        with self.report.step("tools: nginx, chromium, chromedriver (Debian packages)") as note:
            missing = [pkg for pkg, names in (("nginx", ["nginx"]), ("chromium", ["chromium", "chromium-browser"]), ("chromium-driver", ["chromedriver"])) if not find_binary(*names)]
            if missing:
                apt_install(missing)
                note.append(f"installed {' '.join(missing)}")
            for names in (["nginx"], ["chromium", "chromium-browser"], ["chromedriver"]):
                if not find_binary(*names):
                    raise RuntimeError(f"{names[0]} still missing")

        with self.report.step("LocalStack venv (Python 3.13, cached in .rehearsal-cache/)") as note:
            stamp = LOCALSTACK_VENV / ".rehearsal-stamp"
            wanted = json.dumps(LOCALSTACK_PINS)
            if not (stamp.exists() and stamp.read_text() == wanted):
                if not os.path.exists(LOCALSTACK_PYTHON):
                    raise RuntimeError(f"needs Python 3.13 at {LOCALSTACK_PYTHON} (set REHEARSAL_PYTHON313)")
                shutil.rmtree(LOCALSTACK_VENV, ignore_errors=True)
                run([LOCALSTACK_PYTHON, "-m", "venv", str(LOCALSTACK_VENV)], log="localstack-install")
                run([str(LOCALSTACK_VENV / "bin/pip"), "install", "-q", *LOCALSTACK_PINS], log="localstack-install", timeout=1500)
                stamp.write_text(wanted)
                note.append("created")
            else:
                note.append("cached")

    def fresh_state(self):
        with self.report.step(f"fresh PostgreSQL database {DB_NAME}, Redis DB {REDIS_DB} flushed"):
            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
                conn.execute(f'CREATE DATABASE "{DB_NAME}"')
            redis.Redis.from_url(f"{REDIS_BASE}/{REDIS_DB}").flushdb()

    def s3(self):
        with self.report.step("LocalStack S3 ready, signature validation on") as note:
            env = {
                "PATH": os.environ.get("PATH", ""),
                "HOME": str(RUN_DIR),
                "SERVICES": "s3",
                "S3_SKIP_SIGNATURE_VALIDATION": "0",
                "GATEWAY_LISTEN": f"127.0.0.1:{self.ports['s3']}",
                "DNS_ADDRESS": "0",
                "SKIP_SSL_CERT_DOWNLOAD": "1",
                "DISABLE_EVENTS": "1",
                "LOCALSTACK_VOLUME_DIR": str(RUN_DIR / "localstack"),
            }
            self.procs.start("localstack", [str(LOCALSTACK_VENV / "bin/python"), "-m", "localstack.runtime.main"], env=env)

            def ready():
                health = requests.get(f"{self.s3_internal}/_localstack/health", timeout=3).json()
                return health.get("services", {}).get("s3") in ("available", "running")

            wait_until(ready, timeout=120, what="LocalStack health", alive=self.alive)
            client = self.s3_client(self.s3_internal)
            for bucket in (WL_BUCKET, MEDIA_BUCKET):
                client.create_bucket(Bucket=bucket)
            # Previews (public/) and creator pictures are public; everything else needs a signature.
            anonymous_read = [
                (MEDIA_BUCKET, f"arn:aws:s3:::{MEDIA_BUCKET}/public/*"),
                (WL_BUCKET, f"arn:aws:s3:::{WL_BUCKET}/*"),
            ]
            for bucket, resource in anonymous_read:
                policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": resource}]}
                client.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
            client.put_object(Bucket=MEDIA_BUCKET, Key="probe.txt", Body=b"probe")
            good = self.s3_client(self.s3_public).generate_presigned_url("get_object", Params={"Bucket": MEDIA_BUCKET, "Key": "probe.txt"}, ExpiresIn=60)
            bad = self.s3_client(self.s3_public, secret="wrong").generate_presigned_url("get_object", Params={"Bucket": MEDIA_BUCKET, "Key": "probe.txt"}, ExpiresIn=60)
            if requests.get(good, timeout=10).status_code != 200:
                raise RuntimeError("a correctly signed URL was refused")
            status = requests.get(bad, timeout=10).status_code
            if status != 403:
                raise RuntimeError(f"a URL signed with a wrong secret got {status}, not 403: signatures are not checked")
            note.append("wrong secret → 403")

    @staticmethod
    def s3_client(endpoint, secret="test"):
        return boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="test",
            aws_secret_access_key=secret,
            region_name="us-east-1",
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        )

    def put_creator(self, name: str, *, posts: dict[str, list[str]], hue: int):
        client = self.s3_client(self.s3_internal)
        color = ((hue * 37) % 200, (hue * 91) % 200, 120)
        client.put_object(Bucket=WL_BUCKET, Key=f"{name}/thumbnail.jpg", Body=jpeg(name, color, (340, 440)), ContentType="image/jpeg")
        client.put_object(Bucket=WL_BUCKET, Key=f"{name}/profile/icon.jpg", Body=jpeg(name, color, (200, 200)), ContentType="image/jpeg")
        client.put_object(Bucket=WL_BUCKET, Key=f"{name}/profile/banner.jpg", Body=jpeg(name, color, (1600, 500)), ContentType="image/jpeg")
        for post, files in posts.items():
            for n, file_name in enumerate(files):
                key = f"{name}/{post}/{file_name}"
                if file_name.endswith(".webm"):
                    client.put_object(Bucket=WL_BUCKET, Key=key, Body=(ASSETS / "clip.webm").read_bytes(), ContentType="video/webm")
                else:
                    client.put_object(Bucket=WL_BUCKET, Key=key, Body=jpeg(f"{post} {n}", color), ContentType="image/jpeg")

    def fakes(self):
        with self.report.step("SMTP sink (aiosmtpd) and fake JunglePay listening") as note:
            self.smtp = SmtpSink(self.ports["smtp"]).start()
            self.gateway = PayingJunglePay().__enter__()
            note.append(f"smtp :{self.ports['smtp']}, junglepay {self.gateway.url}")

    def configure(self):
        self.env = {
            "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
            "HOME": os.environ.get("HOME", str(RUN_DIR)),
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            "DEBUG": "false",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SITE_URL": self.base,
            "CSRF_TRUSTED_ORIGINS": self.base,
            "TRUSTED_PROXIES": "1",
            "DATABASE_URL": f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{DB_NAME}",
            "REDIS_URL": f"{REDIS_BASE}/{REDIS_DB}",
            "CACHE_KEY_PREFIX": "rehearsal",
            "AWS_S3_ENDPOINT_URL": self.s3_internal,
            "AWS_S3_PUBLIC_ENDPOINT_URL": self.s3_public,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_S3_REGION_NAME": "us-east-1",
            "AWS_STORAGE_BUCKET_NAME": MEDIA_BUCKET,
            "WHITELABEL_BUCKET": WL_BUCKET,
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(self.ports["smtp"]),
            "DEFAULT_FROM_EMAIL": "CreatorFlix <no-reply@rehearsal.test>",
            "JUNGLEPAY_API_URL": self.gateway.url,
            # The fake's card tokenizer (the real one is JunglePay's script): only the checkout page may load it.
            "JUNGLEPAY_JS_URL": self.gateway.url + "/js",
            "METRICS_TOKEN": secrets.token_urlsafe(24),
        }
        with self.report.step("deploy: catalogues compiled, migrate, collectstatic, plans, JunglePay gateway") as note:
            run(["make", "--no-print-directory", "compile-messages"], env={**os.environ}, log="deploy")
            manage(self.env, "migrate", "--noinput", log="deploy")
            manage(self.env, "collectstatic", "--noinput", "-v", "0", log="deploy")
            manage(self.env, "loaddata", str(Path(__file__).resolve().parent / "seed.json"), log="deploy")
            out = manage(self.env, "configure_gateway", "junglepay", "--secret-key", "sk_rehearsal_" + secrets.token_hex(8), "--activate", log="deploy").stdout
            postback = re.search(r"https?://\S+/api/webhook/junglepay\?token=\S+", out)
            if not postback or not postback.group(0).startswith(self.base):
                raise RuntimeError(f"configure_gateway printed no postback URL on {self.base}: {out}")
            self.postback_token = postback.group(0).split("token=", 1)[1]
            manage(self.env, "check", "--deploy", "--fail-level", "ERROR", log="deploy")
            note.append("postback URL on the nginx address")

        with self.report.step("publish_whitelabel --all with nothing staged exits cleanly"):
            manage(self.env, "publish_whitelabel", "--all", log="deploy")

        with self.report.step(f"beat's sync and sweep shortened to {BEAT_EVERY}s through django-celery-beat's models") as note:
            script = (
                "from django_celery_beat.models import IntervalSchedule, PeriodicTask\n"
                f"every, _ = IntervalSchedule.objects.get_or_create(every={BEAT_EVERY}, period=IntervalSchedule.SECONDS)\n"
                "names = ['whitelabel.tasks.sync_bucket', 'billing.tasks.sweep_subscriptions']\n"
                "tasks = list(PeriodicTask.objects.filter(task__in=names))\n"
                "assert sorted(t.task for t in tasks) == sorted(names), [t.task for t in tasks]\n"
                "for task in tasks:\n"
                "    task.interval, task.crontab, task.enabled = every, None, True\n"
                "    task.save()\n"
                "print(len(tasks))\n"
            )
            out = manage(self.env, "shell", "-c", script, log="deploy").stdout
            note.append(f"{out.strip().splitlines()[-1]} periodic tasks")

    def start_servers(self):
        with self.report.step("two web nodes (gunicorn, 2 workers each), the postbacks' workers and the events server (uvicorn workers) behind nginx, two celery workers, celery beat up; /healthz through nginx") as note:
            launched = time.monotonic()
            for node in WEB_NODES:
                # A node of its own: its port, its gunicorn master, its metrics directory.
                env = {**self.env, "PROMETHEUS_MULTIPROC_DIR": str(RUN_DIR / f"prometheus-{node}")}
                self.procs.start(
                    node,
                    [str(BIN / "gunicorn"), "-c", "config/gunicorn_conf.py", "config.wsgi:application", "--bind", f"127.0.0.1:{self.ports[node]}", "--workers", "2"],
                    env=env,
                )
            # The postbacks: workers of their own, so a payment never waits behind pages (nginx: /api/webhook/).
            self.procs.start(
                POSTBACKS,
                [str(BIN / "gunicorn"), "-c", "config/gunicorn_conf.py", "config.wsgi:application", "--bind", f"127.0.0.1:{self.ports[POSTBACKS]}", "--workers", "2"],
                env={**self.env, "PROMETHEUS_MULTIPROC_DIR": str(RUN_DIR / "prometheus-postbacks")},
            )
            # The checkout's event streams: an ASGI server of their own (uvicorn workers), so an open stream
            # never holds a worker that serves pages; nginx routes /api/checkout/events/ to it.
            self.procs.start(
                "events",
                [
                    str(BIN / "gunicorn"), "-c", "config/gunicorn_conf.py", "config.asgi:application",
                    "--worker-class", "uvicorn_worker.UvicornWorker", "--bind", f"127.0.0.1:{self.ports['events']}",
                    "--workers", "2", "--graceful-timeout", "5",
                ],
                env={**self.env, "DATABASE_POOL_SIZE": "8", "PROMETHEUS_MULTIPROC_DIR": str(RUN_DIR / "prometheus-events")},
            )
            tmp = RUN_DIR / "nginx-tmp"
            tmp.mkdir(parents=True, exist_ok=True)
            os.chmod(tmp, 0o777)
            conf = (Path(__file__).resolve().parent / "nginx.conf.template").read_text()
            upstreams = "\n        ".join(f"server 127.0.0.1:{self.ports[node]};" for node in WEB_NODES)
            settings = {
                "run_dir": str(RUN_DIR), "upstream_servers": upstreams, "events_server": f"127.0.0.1:{self.ports['events']}",
                "postback_servers": f"server 127.0.0.1:{self.ports[POSTBACKS]};",
                "nginx_port": str(self.ports["nginx"]),
            }
            for key, value in settings.items():
                conf = conf.replace("{{" + key + "}}", value)
            (RUN_DIR / "nginx.conf").write_text(conf)
            nginx = find_binary("nginx")
            run([nginx, "-t", "-p", str(RUN_DIR), "-c", str(RUN_DIR / "nginx.conf")], log="nginx-test")
            self.procs.start("nginx", [nginx, "-p", str(RUN_DIR), "-c", str(RUN_DIR / "nginx.conf")], env={"PATH": os.environ.get("PATH", "")})
            for worker in CELERY_WORKERS:
                self.procs.start(worker, [str(BIN / "celery"), "-A", "config", "worker", "--loglevel=INFO", "--concurrency=2", "-n", f"rehearsal-{worker}-{os.getpid()}@%h"], env=self.env)
            self.procs.start(
                "celery-beat",
                [str(BIN / "celery"), "-A", "config", "beat", "--loglevel=INFO", "--scheduler", "django_celery_beat.schedulers:DatabaseScheduler", "--pidfile", str(RUN_DIR / "beat.pid")],
                env=self.env,
            )

            def healthy(base):
                response = requests.get(f"{base}/healthz", timeout=5)
                return response.status_code == 200 and response.json() == {"status": "ok", "database": "ok", "cache": "ok"}

            # Each node up on its own first: nginx takes a node that refused a connection while it booted
            # out of the upstream for 10 s (max_fails/fail_timeout), and a request then meets "no live upstreams".
            for node in (*WEB_NODES, POSTBACKS):
                wait_until(lambda node=node: healthy(f"http://127.0.0.1:{self.ports[node]}"), timeout=90, what=f"{node}'s /healthz", alive=self.alive)
            wait_until(lambda: healthy(self.base), timeout=90, what="/healthz through nginx", alive=self.alive)
            wait_until(lambda: http_ok(f"{self.base}/"), timeout=60, what="the home page through nginx", alive=self.alive)
            first_page = time.monotonic()
            self.report.figure("time to first page", f"{first_page - launched:.1f} s after the servers were launched ({first_page - self.report.started:.1f} s after `make rehearsal` started)")
            note.append(f"first page {first_page - launched:.1f}s after launch")

            workers = [p for p in self.procs.started if p.name in CELERY_WORKERS]

            def workers_ready():
                return all("ready." in worker.tail(400) for worker in workers)

            wait_until(workers_ready, timeout=90, what="both celery workers", alive=self.alive)

        with self.report.step("nginx → whitenoise: hashed static file, long cache, https as the proxy said") as note:
            home = requests.get(f"{self.base}/", timeout=10)
            css = re.search(r'href="(/static/[^"]+\.css)"', home.text)
            if not css:
                raise RuntimeError("no stylesheet link on the home page")
            static = requests.get(self.base + css.group(1), timeout=10)
            if static.status_code != 200 or "max-age" not in static.headers.get("Cache-Control", ""):
                raise RuntimeError(f"{css.group(1)}: {static.status_code} {static.headers.get('Cache-Control')}")
            if not re.search(r"\.[0-9a-f]{12}\.css$", css.group(1)):
                raise RuntimeError(f"{css.group(1)} is not a hashed (manifest) name")
            if "Strict-Transport-Security" not in home.headers:
                raise RuntimeError("no HSTS header: X-Forwarded-Proto from nginx was not believed")
            note.append(f"{css.group(1)} {static.headers.get('Cache-Control')}")

    # --- database reads for what beat did (the scheduler's own tables and the staging table) ---
    def sql(self, query: str, *params):
        with psycopg.connect(self.env["DATABASE_URL"], autocommit=True) as conn:
            return conn.execute(query, params).fetchall()

    def beat_runs(self, task: str) -> int:
        """How many times beat sent `task`, from its own log (the scheduler saves run counts only every few minutes)."""
        beat = next(p for p in self.procs.started if p.name == "celery-beat")
        lines = beat.log_path.read_text(errors="replace").splitlines()
        return sum(1 for line in lines if "Sending due task" in line and f"({task})" in line)

    def staged(self, folder: str) -> bool:
        return bool(self.sql("SELECT 1 FROM whitelabel_whitelabelcreator WHERE folder_name = %s", folder))

    def beat_sync(self):
        with self.report.step("beat ran the white-label sync on its own; publish puts the creator in the catalog") as note:
            self.put_creator(CREATOR, posts={POST: ["01 abertura.jpg", "02 luz & sombra.jpg", "03 bastidores.webm"]}, hue=3)
            start = time.monotonic()
            wait_until(lambda: self.staged(CREATOR), timeout=120, what="beat's sync to stage the creator", alive=self.alive, interval=1)
            note.append(f"staged {time.monotonic() - start:.1f}s after upload, sync runs by beat: {self.beat_runs('whitelabel.tasks.sync_bucket')}")
            manage(self.env, "publish_whitelabel", "--all", log="publish")
            page = requests.get(f"{self.base}/models/", timeout=10)
            if CREATOR not in page.text:
                raise RuntimeError("the published creator is not on /models/")

    # --- the browser -----------------------------------------------------
    def start_browser(self):

        options = webdriver.ChromeOptions()
        options.binary_location = find_binary("chromium", "chromium-browser")
        for flag in CHROME_FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={RUN_DIR / 'chromium-profile'}")
        options.add_argument("--window-size=1280,900")
        options.add_experimental_option("prefs", {"intl.accept_languages": "pt-BR,pt"})
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        log = open(LOG_DIR / "chromedriver.log", "ab")  # noqa: SIM115 - lives as long as the driver
        self.driver = webdriver.Chrome(service=Service(executable_path=find_binary("chromedriver"), log_output=log), options=options)
        self.driver.set_page_load_timeout(60)

    def set_date(self, element_id: str, value: str) -> None:
        """A date input, set the way a browser's date picker leaves it (typing depends on the locale)."""
        self.js("const e = document.getElementById(arguments[0]); if (e && !e.value) { e.value = arguments[1]; }", element_id, value)

    def css(self, selector, *, timeout=30, visible=True):

        condition = ec.visibility_of_element_located if visible else ec.presence_of_element_located
        return WebDriverWait(self.driver, timeout).until(condition((By.CSS_SELECTOR, selector)))

    def all_css(self, selector):

        return self.driver.find_elements(By.CSS_SELECTOR, selector)

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def browser_until(self, predicate, *, timeout=30, what):
        return wait_until(predicate, timeout=timeout, what=what, alive=self.alive, interval=0.2)

    def log_in(self):
        self.driver.get(self.base + "/accounts/login/")
        self.css("input[name=username]").send_keys(BUYER["email"])
        self.css("input[name=password]").send_keys(BUYER["password"])
        self.css("main form button[type=submit]").click()
        self.browser_until(lambda: "/login/" not in self.driver.current_url, what="the login to redirect (locked out?)")

    def csp_violations(self):
        return [e["message"] for e in self.driver.get_log("browser") if "Content Security Policy" in e["message"] or "Content-Security-Policy" in e["message"]]

    def journey(self):
        with self.report.step("browser: home page through nginx") as note:
            self.start_browser()
            start = time.monotonic()
            self.driver.get(self.base + "/")
            self.css("main")
            self.report.figure("home page in the browser", f"{time.monotonic() - start:.2f} s (fresh Chromium, through nginx)")
            note.append(self.driver.title)

        with self.report.step("browser: creators page, creator picture loaded from S3's public endpoint") as note:
            self.driver.get(self.base + "/models/")
            card = self.css("[data-testid=creator-card]")
            if CREATOR not in card.text:
                raise RuntimeError(f"first card is {card.text!r}")
            self.browser_until(
                lambda: self.js(
                    "return [...document.querySelectorAll('[data-testid=creator-card] img')].some(i => i.currentSrc.startsWith(arguments[0]) && i.naturalWidth > 0)",
                    self.s3_public,
                ),
                what=f"a creator picture loaded from {self.s3_public}",
            )
            note.append(f"from {self.s3_public}")

        with self.report.step("browser: sign up (confirming the e-mail from the SMTP sink when one is sent)") as note:
            self.driver.get(self.base + "/accounts/signup/")
            self.css("input[name=email]").send_keys(BUYER["email"])
            self.css("input[name=name]").send_keys(BUYER["name"])
            self.css("input[name=password1]").send_keys(BUYER["password"])
            self.css("input[name=password2]").send_keys(BUYER["password"])
            # Age assurance: the declared birth date confirms the age (AGE_VERIFICATION=declaration).
            self.set_date("id_birth_date", BUYER["birth_date"])
            self.css("main form button[type=submit]").click()
            self.browser_until(lambda: "/signup/" not in self.driver.current_url, what="the sign-up to redirect")
            # Sign-up that asks to confirm the e-mail sends a link; without one (this branch) the
            # account is usable at once. Either way the buyer must end up logged in.
            try:
                sent = wait_until(lambda: self.smtp.find(to=BUYER["email"]), timeout=8, what="a confirmation e-mail")
            except TimeoutError:
                sent = []
            links = [url for message in sent for url in re.findall(r"https?://\S+", body_text(message)) if url.startswith(self.base)]
            if links:
                self.driver.get(links[0])
                self.css("main")
                note.append(f"confirmed with {urlsplit(links[0]).path[:40]}")
            else:
                note.append("no confirmation e-mail sent (none on this branch): logged in at sign-up")
            self.driver.get(self.base + "/account/")
            self.css("main")
            if "/accounts/login/" in self.driver.current_url:
                self.log_in()
                note.append("logged in after confirming")
            if "/accounts/login/" in self.driver.current_url or not self.driver.get_cookie("sessionid"):
                raise RuntimeError("the new account is not logged in")

        with self.report.step("browser: locked post shows only its blurred preview, a public URL on S3's public endpoint") as note:
            self.driver.get(self.base + "/models/")
            self.css("[data-testid=creator-card]").click()
            link = self.css("a[href^='/posts/']")
            self.post_path = urlsplit(link.get_attribute("href")).path

            def preview_loaded():
                # The worker makes the preview after publish; until then the page shows a placeholder.
                self.driver.get(self.base + self.post_path)
                self.css("[data-testid=locked]")
                return self.js(
                    "const i = document.querySelector('[data-testid=locked] img');"
                    "return i && i.complete && i.naturalWidth > 0 && i.currentSrc.startsWith(arguments[0] + '/') && !i.currentSrc.includes('X-Amz-Signature')",
                    self.s3_public,
                )

            wait_until(preview_loaded, timeout=90, what="the locked post's preview from S3", alive=self.alive, interval=1)
            if self.all_css("[data-testid=media] img") or self.all_css("[data-testid=media] video"):
                raise RuntimeError("a locked post shows its media")
            note.append(self.post_path)

        with self.report.step("browser: checkout → PIX QR shown (charge created at the fake JunglePay)") as note:
            self.css("[data-testid=subscribe-cta]").click()
            self.css("[data-testid=plan-card]")
            # The 2-day plan: near its end at once, so beat's sweep issues its renewal on its own.
    
            cards = [card for card in self.all_css("[data-testid=plan-card]") if "2 dias" in card.text]
            if not cards:
                raise RuntimeError("no card for the 2-day plan on /plans/")
            plan_link = cards[0].find_element(By.CSS_SELECTOR, "a[href*='/checkout/']").get_attribute("href")
            self.driver.get(plan_link)
            self.css("#identify-form")
            if self.css("#id_email").get_attribute("value") != BUYER["email"]:
                raise RuntimeError("the logged-in buyer's e-mail is not prefilled")
            self.set_date("id_birth_date", BUYER["birth_date"])
            self.css("#id_cpf").send_keys(valid_cpf(1))
            self.css("#id_phone").send_keys("11987654321")
            self.css("#submit-identify").click()
            self.css("#pix-qr svg", timeout=45)
            if not self.css("#pix-code").get_attribute("value"):
                raise RuntimeError("no PIX copy-and-paste code")
            self.checkout_id = re.search(r"checkout=([0-9a-f-]{36})", self.driver.current_url).group(1)
            self.transaction = self.gateway.latest_for()
            if not self.transaction or not self.transaction["postbackUrl"].startswith(self.base + "/api/webhook/junglepay?token="):
                raise RuntimeError(f"the charge's postback URL is not the nginx address: {self.transaction}")
            note.append(f"transaction {self.transaction['id']}")

        with self.report.step("fake JunglePay pays and posts the postback through nginx") as note:
            self.paid_at = time.monotonic()
            response = self.gateway.pay(self.transaction["id"])
            if response.status_code != 200:
                raise RuntimeError(f"postback answered {response.status_code}: {response.text[:300]}")
            note.append(response.text[:80])

        with self.report.step("browser: checkout page turns paid by itself") as note:
            self.css("#step-done", timeout=60)
            note.append(f"{time.monotonic() - self.paid_at:.1f}s after the postback")

        with self.report.step("the payment was pushed over the event stream, served by the events server, not a page worker") as note:
            stream = f"GET /api/checkout/events/{self.checkout_id}"

            events_log = next(p for p in self.procs.started if p.name == "events").log_path

            def streamed():
                # uvicorn's own access line ('"GET /path HTTP/1.1" 200'), through gunicorn's access log.
                return f"{stream} HTTP/1.1\" 200" in events_log.read_text(errors="replace")

            wait_until(streamed, timeout=20, what="the events server's access line for the buyer's stream", alive=self.alive)
            on_web = [node for node in WEB_NODES if any(stream in line for line in self.access_lines(node))]
            if on_web:
                raise RuntimeError(f"nginx sent the event stream to a page worker: {on_web}")
            note.append("stream answered by the uvicorn workers")

        with self.report.step("browser: unlocked post shows images and plays its video from S3 (presigned, checked)") as note:
            self.driver.get(self.base + self.post_path)
            self.css("[data-testid=media]")
            if self.all_css("[data-testid=locked]"):
                raise RuntimeError("the post is still locked after payment")
            sources = self.js("return [...document.querySelectorAll('[data-testid=media] img')].map(i => i.getAttribute('src'))")
            videos = self.js("return [...document.querySelectorAll('[data-testid=media] video source')].map(s => s.getAttribute('src'))")
            if len(sources) != 2 or len(videos) != 1:
                raise RuntimeError(f"expected 2 images and 1 video, got {sources} and {videos}")
            for url in sources + videos:
                if not url.startswith(self.s3_public + "/") or "X-Amz-Signature=" not in url:
                    raise RuntimeError(f"not a presigned URL on the public S3 endpoint: {url}")
            # Lazy images below the fold: ask for every slide's image now.
            self.js("document.querySelectorAll('[data-testid=media] img').forEach(i => { i.loading = 'eager'; i.scrollIntoView(); })")
            self.browser_until(
                lambda: self.js("return [...document.querySelectorAll('[data-testid=media] img')].every(i => i.complete && i.naturalWidth > 0)"),
                timeout=45,
                what="every image to load from S3",
            )
            self.js("const v = document.querySelector('[data-testid=media] video'); v.scrollIntoView(); v.muted = true; v.play().catch(() => {});")
            self.browser_until(
                lambda: self.js("const v = document.querySelector('[data-testid=media] video'); return v.readyState >= 2 && v.currentTime > 0 && !v.error"),
                timeout=45,
                what="the video to play from S3",
            )
            unlocked = time.monotonic() - self.paid_at
            self.report.figure("postback → unlocked media", f"{unlocked:.1f} s (postback sent by the fake gateway → page paid → post reloaded → 2 images and the video playing from S3)")
            violations = self.csp_violations()
            if violations:
                raise RuntimeError(f"Content-Security-Policy violations: {violations[:3]}")
            self.media_url = sources[0]
            note.append(f"{unlocked:.1f}s after the postback")

        with self.report.step("S3 refuses a tampered presigned URL that it served untampered") as note:
            good = requests.get(self.media_url, timeout=10)
            tampered = re.sub(r"(X-Amz-Signature=[0-9a-f]*)([0-9a-f])$", lambda m: m.group(1) + ("0" if m.group(2) != "0" else "1"), self.media_url)
            bad = requests.get(tampered, timeout=10)
            if good.status_code != 200 or bad.status_code != 403:
                raise RuntimeError(f"good URL {good.status_code}, tampered {bad.status_code}")
            note.append("200 / 403")

        with self.report.step("browser: account page shows the active subscription") as note:
            self.driver.get(self.base + "/account/")
            main = self.css("main").text
            if "Degustação 2 dias" not in main:
                raise RuntimeError(f"plan not on the account page: {main[:300]}")
            note.append(main.splitlines()[0][:60] if main else "")

    def beat_sweep(self):
        with self.report.step("beat's sweep e-mailed the renewal, whole in pt-BR, to the SMTP sink") as note:
            found = wait_until(
                lambda: self.smtp.find(to=BUYER["email"], contains="/checkout/pay/"),
                timeout=120,
                what="the renewal e-mail in the SMTP sink",
                alive=self.alive,
                interval=1,
            )
            message = found[-1]
            text = body_text(message)
            english = [phrase for phrase in ("Your ", "subscription", "ends on", "renewal", "Hello") if phrase in text or phrase in str(message["Subject"])]
            if english or "assinatura" not in text:
                raise RuntimeError(f"not whole in pt-BR (English: {english}): {message['Subject']!r} {text[:300]!r}")
            self.renewal_link = re.search(r"https?://\S+/checkout/pay/[0-9a-f-]{36}/", text).group(0)
            self.report.figure("beat's sweep observed", f"renewal e-mail in the SMTP sink {time.monotonic() - self.paid_at:.1f} s after the postback (sweep every {BEAT_EVERY} s; runs by beat: {self.beat_runs('billing.tasks.sweep_subscriptions')})")
            note.append(str(message["Subject"]))

        with self.report.step("browser: the renewal link opens a payable PIX") as note:
            before = len(self.gateway.transactions)
            self.driver.get(self.renewal_link)
            self.css("#pix-qr svg", timeout=45)
            if not self.css("#pix-code").get_attribute("value"):
                raise RuntimeError("no PIX code on the renewal page")
            if len(self.gateway.transactions) != before + 1:
                raise RuntimeError("no new charge at the gateway for the renewal")
            note.append(f"transaction {self.gateway.latest_for()['id']}")

        with self.report.step("a creator added to the bucket is synced by beat and appears after publish") as note:
            runs_before = self.beat_runs("whitelabel.tasks.sync_bucket")
            start = time.monotonic()
            self.put_creator(LATE_CREATOR, posts={"Primeiro post": ["foto.jpg"]}, hue=7)
            wait_until(lambda: self.staged(LATE_CREATOR), timeout=120, what="beat's sync to stage the new creator", alive=self.alive, interval=1)
            staged = time.monotonic() - start
            manage(self.env, "publish_whitelabel", "--all", log="publish")
            self.driver.get(self.base + "/models/")
            self.browser_until(lambda: LATE_CREATOR in self.css("main").text, what="the new creator on /models/")
            self.report.figure("beat's sync observed", f"a creator uploaded to the bucket was staged {staged:.1f} s later (sync every {BEAT_EVERY} s; runs by beat {runs_before} → {self.beat_runs('whitelabel.tasks.sync_bucket')}) and listed after publish_whitelabel --all")
            note.append(f"staged after {staged:.1f}s")

    def proxies(self):
        with self.report.step("spoofed X-Forwarded-For does not escape the API throttle; other visitors unaffected") as note:
            attacker = visitor("127.0.0.2")
            statuses = []
            for n in range(30):
                response = attacker.post(
                    f"{self.base}/api/auth/login",
                    json={"email": f"nobody{n}@example.com", "password": "wrong"},
                    headers={"X-Forwarded-For": f"203.0.113.{n}"},
                    timeout=15,
                )
                statuses.append(response.status_code)
            if 429 not in statuses:
                raise RuntimeError(f"30 logins with forged X-Forwarded-For were never throttled: {sorted(set(statuses))}")
            other = visitor("127.0.0.3").post(f"{self.base}/api/auth/login", json={"email": "x@example.com", "password": "wrong"}, timeout=15)
            if other.status_code == 429:
                raise RuntimeError("another visitor (127.0.0.3) is throttled too: the throttle keys on nginx's address")
            note.append(f"throttled after {statuses.index(429)} requests; another address got {other.status_code}")

        with self.report.step("ten wrong passwords from one visitor do not lock the site's login for others") as note:
            attacker = visitor("127.0.0.4")
            page = attacker.get(f"{self.base}/accounts/login/", timeout=15)
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
            cookie = attacker.cookies.get("csrftoken")
            for n in range(12):
                attacker.post(
                    f"{self.base}/accounts/login/",
                    data={"csrfmiddlewaretoken": token, "username": f"victim{n}@example.com", "password": "wrong-password"},
                    headers={"Cookie": f"csrftoken={cookie}", "Origin": self.base, "Referer": f"{self.base}/accounts/login/"},
                    timeout=15,
                )
            # The buyer, from another address, logs in with the browser.
            self.driver.delete_all_cookies()
            self.log_in()
            note.append("buyer logged in after 12 failures from 127.0.0.4")

        with self.report.step("forty buyers behind one address (carrier-grade NAT) all get their PIX within a minute") as note:
            nat = visitor("127.0.0.5")
            plans = nat.get(f"{self.base}/api/plans", timeout=15).json()
            plan_id = (plans["results"] if isinstance(plans, dict) else plans)[0]["id"]
            start = time.monotonic()
            refused = []
            for n in range(40):
                body = {
                    "plan_id": plan_id,
                    "payment_method": "pix",
                    "order_bump_ids": [],
                    "name": f"Comprador {n}",
                    "email": f"comprador{n}@example.com",
                    "cpf": valid_cpf(100 + n),
                    "phone": "11987654321",
                    "birth_date": BUYER["birth_date"],
                }
                created = nat.post(f"{self.base}/api/checkout/process", json=body, timeout=30)
                if created.status_code != 201:
                    refused.append(("process", n, created.status_code))
                    continue
                checkout_id = created.json()["checkout_id"]
                for _ in range(2):  # a second call returns the same charge
                    pix = nat.post(f"{self.base}/api/checkout/pix", json={"checkout_id": checkout_id}, timeout=30)
                    if pix.status_code != 200 or not pix.json().get("pix_code"):
                        refused.append(("pix", n, pix.status_code))
                status = nat.get(f"{self.base}/api/checkout/{checkout_id}", timeout=15)
                if status.status_code != 200:
                    refused.append(("status", n, status.status_code))
            elapsed = time.monotonic() - start
            if refused:
                raise RuntimeError(f"{len(refused)} refused: {refused[:5]}")
            if elapsed > 60:
                raise RuntimeError(f"took {elapsed:.0f}s, not within a minute")
            note.append(f"40 × (process + pix×2 + status) in {elapsed:.1f}s")

    def cards(self):
        with self.report.step("card buyer through nginx: refused, then paid in 3 installments with another card; only the hash reached us") as note:
            buyer = visitor("127.0.0.7")
            plans = buyer.get(f"{self.base}/api/plans", timeout=15).json()
            plan = next(p for p in (plans["results"] if isinstance(plans, dict) else plans) if p["max_installments"] > 1)
            body = {
                "plan_id": plan["id"], "payment_method": "card", "installments": 3, "order_bump_ids": [],
                "name": "Cartão Rehearsal", "email": "cartao@example.com", "cpf": valid_cpf(900),
                "phone": "11987654321", "birth_date": BUYER["birth_date"],
            }
            created = buyer.post(f"{self.base}/api/checkout/process", json=body, timeout=30)
            if created.status_code != 201:
                raise RuntimeError(f"process answered {created.status_code}: {created.text[:300]}")
            self.card_checkout_id = created.json()["checkout_id"]
            card = {"checkout_id": self.card_checkout_id, "installments": 3}
            refused = buyer.post(f"{self.base}/api/checkout/card", json={**card, "card_hash": make_test_card_hash(last_digits="0002")}, timeout=30)
            if refused.status_code != 402 or refused.json()["error"]["code"] != "card_refused":
                raise RuntimeError(f"a refused card answered {refused.status_code}: {refused.text[:300]}")
            paid = buyer.post(
                f"{self.base}/api/checkout/card",
                json={**card, "card_hash": make_test_card_hash(last_digits="4242", brand="visa", exp_month=12, exp_year=2030)},
                timeout=30,
            )
            if paid.status_code != 200 or paid.json()["status"] != "paid" or paid.json()["installments"] != 3:
                raise RuntimeError(f"the second card answered {paid.status_code}: {paid.text[:300]}")
            charges = [t for t in self.gateway.transactions.values() if t.get("paymentMethod") == "credit_card"]
            if [t["status"] for t in charges] != ["refused", "paid"] or charges[-1].get("installments") != 3:
                raise RuntimeError(f"the gateway holds {[(t['status'], t.get('installments')) for t in charges]}")
            note.append(f"402 then paid, {refused.json()['error']['message'][:40]!r}")

        with self.report.step("beat renews the card subscription by itself at end_date: one charge of the saved card, its own externalRef") as note:
            # The buyer's whole history moves back in time until its period ended a minute ago (no clock
            # moves in a running server): every moment of its subscription, checkouts, attempts and ledger
            # rows, by the same delta, so the money audit of the backup step still finds it consistent.
            script = (
                "from datetime import timedelta\n"
                "from django.db import connection, models\n"
                "from django.utils import timezone\n"
                "from billing.ledger_models import LedgerEntry\n"
                "from billing.models import CardAttempt, ChargeAttempt, Checkout, Subscription\n"
                f"sub = Checkout.objects.get(public_id='{self.card_checkout_id}').subscription\n"
                "assert sub.card_id, 'no saved card'\n"
                "delta = sub.end_date - timezone.now() + timedelta(minutes=1)\n"
                "checkouts = list(Checkout.objects.filter(subscription=sub).values_list('pk', flat=True))\n"
                "rows = [(Subscription, 'id = ANY(%s)', [[sub.pk]]), (Checkout, 'id = ANY(%s)', [checkouts]),\n"
                "        (CardAttempt, 'checkout_id = ANY(%s)', [checkouts]), (ChargeAttempt, 'checkout_id = ANY(%s)', [checkouts]),\n"
                "        (LedgerEntry, 'subscription_id = ANY(%s) OR checkout_id = ANY(%s)', [[sub.pk], checkouts])]\n"
                "with connection.cursor() as cursor:\n"
                "    for model, where, params in rows:\n"
                "        columns = [f.column for f in model._meta.concrete_fields if isinstance(f, models.DateTimeField)]\n"
                "        sets = ', '.join(f'{c} = {c} - %s' for c in columns)\n"
                "        cursor.execute(f'UPDATE {model._meta.db_table} SET {sets} WHERE {where}', [delta] * len(columns) + params)\n"
                "print(sub.card_id)\n"
            )
            known = set(self.gateway.transactions)  # the purchase's own charges
            card_id = manage(self.env, "shell", "-c", script, log="cards").stdout.strip().splitlines()[-1]
            before = time.monotonic()

            def renewal_charges():
                return [t for i, t in list(self.gateway.transactions.items()) if i not in known and (t.get("card") or {}).get("id") == card_id]

            charged = wait_until(lambda: [t for t in renewal_charges() if t["status"] == "paid"], timeout=90, what="beat's card renewal", alive=self.alive, interval=1)
            time.sleep(2 * BEAT_EVERY)  # later sweeps must not charge the card again for this period
            renewals = renewal_charges()
            if len(renewals) != 1:
                raise RuntimeError(f"{len(renewals)} charges of the saved card for one period")
            self.report.figure("automatic card renewal", f"charged by beat's sweep {time.monotonic() - before - 2 * BEAT_EVERY:.1f} s after end_date passed (sweep every {BEAT_EVERY} s)")
            note.append(f"externalRef {(charged[0].get('externalRef') or '')[:40]}")

    def operations(self):
        with self.report.step("both web nodes served the buyer's journey (no state kept in one node)") as note:
            served = {node: self.access_lines(node) for node in WEB_NODES}
            counts = {node: sum(1 for line in lines if '"GET /api/checkout/' in line or '"POST /api/' in line) for node, lines in served.items()}
            if not all(counts.values()):
                raise RuntimeError(f"a node answered no API request: {counts}")
            note.append(", ".join(f"{node}: {n} API requests" for node, n in counts.items()))

        with self.report.step("the postbacks were served by their own workers, never by a page node") as note:
            on_pages = [node for node in WEB_NODES if any("/api/webhook/" in line for line in self.access_lines(node))]
            served = sum("/api/webhook/junglepay" in line for line in self.access_lines(POSTBACKS))
            if on_pages or not served:
                raise RuntimeError(f"postbacks served by {on_pages or 'no node'}; by the postbacks workers: {served}")
            note.append(f"{served} postbacks, all on {POSTBACKS}")

        with self.report.step("no access log (nginx, every gunicorn node) shows the postback token") as note:
            logs = {"nginx": (RUN_DIR / "nginx-access.log").read_text(errors="replace")}
            logs.update({node: "\n".join(self.access_lines(node)) for node in (*WEB_NODES, POSTBACKS)})
            postbacks = sum(text.count("/api/webhook/junglepay") for text in logs.values())
            leaking = [name for name, text in logs.items() if self.postback_token in text]
            if postbacks == 0:
                raise RuntimeError("no postback in the access logs: nothing was checked")
            if leaking:
                raise RuntimeError(f"the postback token is in the access log of {leaking}")
            note.append(f"{postbacks} postback lines, no token")

        with self.report.step("GET /metrics through nginx: bearer token, Prometheus text, state read at scrape time") as note:
            if requests.get(f"{self.base}/metrics", timeout=10).status_code != 401:
                raise RuntimeError("/metrics answered without the token")
            text = requests.get(f"{self.base}/metrics", headers={"Authorization": f"Bearer {self.env['METRICS_TOKEN']}"}, timeout=10).text
            paid = re.search(r'^creatorflix_checkouts_paid\{method="pix"\} (\S+)$', text, re.M)
            queue = re.search(r'^creatorflix_celery_queue_length\{queue="celery"\} (\S+)$', text, re.M)
            if not paid or float(paid.group(1)) < 1 or not queue:
                raise RuntimeError(f"/metrics lacks the paid checkouts or the queue length: {text[:400]}")
            if "maria.ensaio" in text or self.postback_token in text:
                raise RuntimeError("/metrics shows personal data or a secret")
            note.append(f"paid pix {paid.group(1)}, queue {queue.group(1)}")

        with self.report.step(f"backup: pg_dump {DB_NAME}, restore into {RESTORE_DB}, same rows; audit_money there if the command exists") as note:
            dump = RUN_DIR / "backup.dump"
            source_url = self.env["DATABASE_URL"]
            restore_url = f"{source_url.rsplit('/', 1)[0]}/{RESTORE_DB}"
            run(["pg_dump", "--format=custom", "--no-owner", f"--file={dump}", source_url], log="backup")
            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{RESTORE_DB}" WITH (FORCE)')
                conn.execute(f'CREATE DATABASE "{RESTORE_DB}"')
            run(["pg_restore", "--no-owner", "--exit-on-error", f"--dbname={restore_url}", str(dump)], log="backup")
            tables = ("billing_checkout", "billing_subscription", "billing_webhookevent", "accounts_user", "integrations_outboxevent")
            counts = {}
            for name, url in (("backup", source_url), ("restore", restore_url)):
                with psycopg.connect(url, autocommit=True) as conn:
                    counts[name] = {table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in tables}  # fixed names
            if counts["backup"] != counts["restore"]:
                raise RuntimeError(f"the restored database differs: {counts}")
            note.append(", ".join(f"{table.split('_', 1)[1]} {n}" for table, n in counts["restore"].items()))
            if (ROOT / "billing" / "management" / "commands" / "audit_money.py").exists():
                audit = manage({**self.env, "DATABASE_URL": restore_url}, "audit_money", log="backup", check=False)
                if audit.returncode != 0:
                    raise RuntimeError(f"audit_money on the restored database exited {audit.returncode}: {audit.stdout[-600:]}")
                note.append(f"audit_money clean: {audit.stdout.strip().splitlines()[-1] if audit.stdout.strip() else 'no output'}")
            else:
                note.append("audit_money not on this branch yet: skipped")
            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{RESTORE_DB}" WITH (FORCE)')

    def access_lines(self, node: str) -> list[str]:
        """gunicorn's access lines (not JSON: the site's own lines are) from a node's output."""
        process = next(p for p in self.procs.started if p.name == node)
        return [line for line in process.log_path.read_text(errors="replace").splitlines() if not line.startswith("{") and " rid=" in line]

    def shutdown(self):
        with self.report.step("every process still running at the end, then stopped by pid") as note:
            self.alive()
            pids = [p.pid for p in self.procs.started]
            self.close()
            lingering = []
            for pid in pids:
                try:
                    os.killpg(pid, 0)
                    lingering.append(pid)
                except ProcessLookupError:
                    pass
            if lingering:
                raise RuntimeError(f"process groups still alive: {lingering}")
            note.append(f"{len(pids)} process groups stopped")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.parse_args(argv)
    shutil.rmtree(RUN_DIR, ignore_errors=True)
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    report = Report()
    rehearsal = Rehearsal(report)

    def on_signal(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(f"rehearsal: nginx on {rehearsal.base}, logs in {LOG_DIR.relative_to(ROOT)}/", flush=True)
    try:
        rehearsal.tools()
        rehearsal.fresh_state()
        rehearsal.s3()
        rehearsal.fakes()
        rehearsal.configure()
        rehearsal.start_servers()
        rehearsal.beat_sync()
        rehearsal.journey()
        rehearsal.beat_sweep()
        rehearsal.cards()
        rehearsal.proxies()
        rehearsal.operations()
        rehearsal.shutdown()
    except StepFailed:
        for process in rehearsal.procs.started:
            print(f"\n--- last lines of {process.name} (pid {process.pid}) ---\n{process.tail()}")
        if rehearsal.driver is not None:
            try:
                rehearsal.driver.save_screenshot(str(LOG_DIR / "failure.png"))
                print(f"screenshot: {LOG_DIR / 'failure.png'}")
            except Exception:  # noqa: BLE001
                pass
    except KeyboardInterrupt as exc:
        print(f"interrupted ({exc}): stopping what was started")
        report.rows.append(("interrupted", False, 0.0, str(exc)))
    except (Exception, Stopped):  # noqa: BLE001 - a bug in the rehearsal itself is a failure too
        traceback.print_exc()
        report.rows.append(("rehearsal crashed", False, 0.0, traceback.format_exc(limit=1)))
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        rehearsal.close()
    ok = report.summary()
    (RUN_DIR / "report.json").write_text(json.dumps({"steps": report.rows, "figures": report.figures}, ensure_ascii=False, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
