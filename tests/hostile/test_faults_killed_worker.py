"""
A web worker SIGKILLed in the middle of a payment (a deploy's SIGKILL, an OOM
kill, gunicorn's own timeout), against a real gunicorn on the test database
and the fake JunglePay on loopback. What is counted is what the buyer would
count: charges held by the gateway, and how long a paid buyer waits.

Each test kills gunicorn's worker process by its pid; the master starts a
fresh worker, as in production. Slow on purpose (a real server, real waits):
marked postgres, with generous waits for a loaded two-core machine.
"""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from django.db import connection

from billing.models import Checkout, PaymentGateway, Subscription, WebhookEvent
from billing.tasks import retry_failed_webhooks
from config.beat import PERIODIC_TASKS
from tests.factories import CheckoutFactory
from tests.fakes.junglepay import FakeJunglePay

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
SECRET = "sk_test_killed_worker"


class Gunicorn:
    """One gunicorn master with one sync worker, in a session of its own, stopped by its pid."""

    def __init__(self, *, env: dict, log_path: Path):
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.log_path = log_path
        self.popen = subprocess.Popen(
            [str(Path(sys.executable).with_name("gunicorn")), "config.wsgi:application", "--bind", f"127.0.0.1:{self.port}",
             "--workers", "1", "--timeout", "60", "--graceful-timeout", "5"],
            cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )

    def worker_pids(self) -> list[int]:
        pids = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            # "pid (comm) state ppid ...": comm may hold spaces, so split after its closing parenthesis.
            if int(stat.rsplit(")", 1)[1].split()[1]) == self.popen.pid:
                pids.append(int(entry))
        return pids

    def wait_ready(self, *, not_pid: int | None = None, timeout: float = 120) -> int:
        """Healthy, with a worker other than `not_pid`; returns the worker's pid."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise AssertionError(f"gunicorn exited with {self.popen.returncode}:\n{self.tail()}")
            workers = [pid for pid in self.worker_pids() if pid != not_pid]
            try:
                if workers and requests.get(f"{self.base}/healthz", timeout=5).status_code == 200:
                    return workers[0]
            except requests.RequestException:
                pass
            time.sleep(0.3)
        raise AssertionError(f"gunicorn not ready after {timeout:.0f}s:\n{self.tail()}")

    def kill_worker(self) -> int:
        (pid,) = self.worker_pids()
        os.kill(pid, signal.SIGKILL)
        return pid

    def tail(self) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-30:])

    def stop(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(5)
        self._log.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _database_url() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def fake():
    with FakeJunglePay() as server:
        yield server


@pytest.fixture
def server(fake, tmp_path, settings):
    # The test process talks to the same fake (the retry task runs here, as a Celery worker would).
    settings.JUNGLEPAY_API_URL = fake.url
    settings.JUNGLEPAY_SECRET_KEY = SECRET
    PaymentGateway.objects.update_or_create(kind="sandbox", defaults={"is_active": False})
    PaymentGateway.objects.update_or_create(kind="junglepay", defaults={"secret_key": SECRET, "is_active": True})
    env = {
        **os.environ,
        "DEBUG": "false",
        "SECRET_KEY": settings.SECRET_KEY,
        "FIELD_ENCRYPTION_KEY": settings.FIELD_ENCRYPTION_KEY,
        "DATABASE_URL": _database_url(),
        # No Redis: tasks run in the request (eager) and nothing is queued for a worker that is not there.
        "REDIS_URL": "",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "false",
        "STATICFILES_BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage",
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        "SANDBOX_GATEWAY_ALLOWED": "false",
        "JUNGLEPAY_API_URL": fake.url,
        "JUNGLEPAY_SECRET_KEY": SECRET,
        "LOG_LEVEL": "WARNING",
    }
    gunicorn = Gunicorn(env=env, log_path=tmp_path / "gunicorn.log")
    try:
        gunicorn.wait_ready()
        yield gunicorn
    finally:
        gunicorn.stop()


def _post_in_background(url: str, **kwargs) -> tuple[threading.Thread, list]:
    """The buyer's (or JunglePay's) request, whose answer may never come."""
    answers: list = []

    def send():
        try:
            answers.append(requests.post(url, timeout=90, **kwargs))
        except requests.RequestException as exc:
            answers.append(exc)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread, answers


def _ask_for_pix(server, checkout, *, within: float = 120) -> requests.Response:
    """What a buyer does: ask for the PIX, and ask again while told it is being generated."""
    deadline = time.monotonic() + within
    while True:
        response = requests.post(f"{server.base}/api/checkout/pix", json={"checkout_id": str(checkout.public_id)}, timeout=90)
        if response.status_code != 409 or time.monotonic() > deadline:
            return response
        time.sleep(2)


def test_a_worker_killed_mid_create_never_leads_to_a_second_charge(server, fake):
    # given: a gateway that holds the charge as soon as it is asked, but answers only 30 s later
    checkout = CheckoutFactory(plan__price_cents=2990)
    fake.create_delay = 30

    # when: the worker is SIGKILLed while it waits for the create's answer
    thread, answers = _post_in_background(f"{server.base}/api/checkout/pix", json={"checkout_id": str(checkout.public_id)})
    assert fake.create_started.wait(120), "the create never reached the gateway"
    killed = server.kill_worker()
    thread.join(60)
    assert answers and (isinstance(answers[0], requests.RequestException) or answers[0].status_code >= 500)
    fake.create_delay = 0
    server.wait_ready(not_pid=killed)

    # and: the buyer asks again
    retry = _ask_for_pix(server, checkout)

    # then: the charge the dead worker created is the buyer's PIX; the gateway holds one charge
    assert retry.status_code == 200, retry.text
    assert len(fake.transactions) == 1, f"the gateway holds {len(fake.transactions)} charges for one checkout"
    assert fake.posts == 1
    (transaction_id,) = fake.transactions
    assert retry.json()["transaction_id"] == str(transaction_id)
    checkout.refresh_from_db()
    assert checkout.gateway_transaction_id == str(transaction_id)


def test_a_worker_killed_mid_postback_leaves_no_paid_buyer_waiting_past_a_minute(server, fake):
    # given: a buyer with a PIX charge, who pays it
    checkout = CheckoutFactory(plan__price_cents=2990)
    charged = _ask_for_pix(server, checkout)
    assert charged.status_code == 200, charged.text
    postback = fake.mark_paid(int(charged.json()["transaction_id"]))
    token = PaymentGateway.objects.get(kind="junglepay").postback_token
    url = f"{server.base}/api/webhook/junglepay?token={token}"

    # when: the worker is SIGKILLed while it processes the postback (its fetch of the charge hangs)
    fake.get_started.clear()
    fake.get_delay = 30
    thread, _answers = _post_in_background(url, json=postback)
    assert fake.get_started.wait(120), "the postback was never processed"
    killed = server.kill_worker()
    killed_at = time.monotonic()
    thread.join(60)
    fake.get_delay = 0
    server.wait_ready(not_pid=killed)

    # and: JunglePay re-sends it (our answer never came), and beat runs the retry task on its schedule
    resent = requests.post(url, json=postback, timeout=90)
    assert resent.status_code == 200, resent.text
    every = next(task["every"] for task in PERIODIC_TASKS if task["task"] == "billing.tasks.retry_failed_webhooks")
    paid_after = None
    while time.monotonic() - killed_at < 90:
        checkout.refresh_from_db()
        if checkout.status == Checkout.Status.PAID:
            paid_after = time.monotonic() - killed_at
            break
        time.sleep(every)
        retry_failed_webhooks()

    # then: paid within a minute of the kill, and exactly once
    assert paid_after is not None, "still not paid 90 s after the kill"
    assert paid_after < 60, f"paid {paid_after:.0f} s after the kill"
    print(f"paid {paid_after:.1f} s after the worker was killed")
    assert Subscription.objects.count() == 1
    event = WebhookEvent.objects.get()
    assert event.outcome == WebhookEvent.Outcome.PROCESSED
