"""billing/checkout_status.py against a Redis of its own that goes away mid-test and comes back with its data:
a status write lost in the outage never leaves the entry from before it to be read once Redis is back."""

import os
import socket
import subprocess
import time

import pytest
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from billing.checkout_status import cached_status, publish_after_commit, remember_status
from billing.models import Checkout
from tests.factories import CheckoutFactory

pytestmark = [pytest.mark.django_db, pytest.mark.redis]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(port: int, up: bool = True) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            if up:
                return
        except OSError:
            if not up:
                return
        time.sleep(0.05)
    raise TimeoutError(f"redis on {port} not {'up' if up else 'down'}")


@pytest.fixture
def private_redis(settings, tmp_path):
    """A redis-server of this test's own as the site's cache, keeping its data in an append-only file:
    `stop()` shuts it down (connections refused: every write in between is lost), `start()` brings it
    back on the same port with the data it had."""
    port = _free_port()
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
               "--appendfsync", "always", "--dir", str(tmp_path)]

    class Redis:
        process = None

        def start(self):
            # redis-server is an outside server, not our code: it does not start under libfaketime's clock
            # (`make test-next-year` preloads it into every process), so it runs on the real one.
            env = {key: value for key, value in os.environ.items() if key not in ("LD_PRELOAD", "FAKETIME")}
            self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
            _wait_for(port)

        def stop(self):
            self.process.terminate()
            self.process.wait(timeout=10)
            _wait_for(port, up=False)

    redis = Redis()
    redis.start()
    url = f"redis://127.0.0.1:{port}/0"
    settings.REDIS_URL = url
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": url,
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.3, "SOCKET_TIMEOUT": 0.3, "IGNORE_EXCEPTIONS": True},
        }
    }
    yield redis
    if redis.process.poll() is None:
        redis.process.terminate()
        redis.process.wait(timeout=10)


def _set_status(checkout, capture, **fields):
    """What a service does: change the row in a transaction, publish the status after the commit."""
    with capture(execute=True), transaction.atomic():
        Checkout.objects.filter(pk=checkout.pk).update(**fields)
        publish_after_commit(pk=checkout.pk)


def _poll(checkout) -> str:
    """What the status view does: the cached entry, else the database (which then fills the cache)."""
    entry = cached_status(checkout.public_id)
    if entry is not None:
        return entry["status"]
    fresh = Checkout.objects.get(pk=checkout.pk)
    remember_status(fresh)
    return fresh.status


def test_a_payment_applied_while_redis_was_away_is_read_paid_once_it_is_back(private_redis, django_capture_on_commit_callbacks):
    # given: a pending checkout, polled, so its entry is in Redis
    checkout = CheckoutFactory()
    assert _poll(checkout) == "pending"
    assert cached_status(checkout.public_id)["status"] == "pending"

    # when: Redis is unreachable while the payment is applied (its status write is lost) ...
    private_redis.stop()
    _set_status(checkout, django_capture_on_commit_callbacks, status=Checkout.Status.PAID, paid_at=timezone.now())
    assert _poll(checkout) == "paid"  # the database answers during the outage
    # ... and comes back with its data, the old `pending` entry still in it
    private_redis.start()

    # then
    assert _poll(checkout) == "paid"
    assert cached_status(checkout.public_id)["status"] == "paid"  # refilled from the database


def test_a_refund_lost_in_the_outage_is_not_read_paid_afterwards_by_a_process_that_never_saw_it(
    private_redis, django_capture_on_commit_callbacks
):
    # given
    checkout = CheckoutFactory(status=Checkout.Status.PAID, paid_at=timezone.now())
    assert _poll(checkout) == "paid"

    # when: only the writer saw the outage; it reaches Redis again through its next status write
    private_redis.stop()
    _set_status(checkout, django_capture_on_commit_callbacks, status=Checkout.Status.REFUNDED, refunded_at=timezone.now())
    private_redis.start()
    other = CheckoutFactory()
    _set_status(other, django_capture_on_commit_callbacks, status=Checkout.Status.CANCELED)

    # then
    assert _poll(checkout) == "refunded"


def test_without_an_outage_the_cached_entry_is_served(private_redis):
    checkout = CheckoutFactory()
    _poll(checkout)
    Checkout.objects.filter(pk=checkout.pk).update(status=Checkout.Status.FAILED)  # no publish: not a service

    assert _poll(checkout) == "pending"  # still the cache's answer: no database read per poll
    assert cache.get("billing:checkout-status:generation") in (None, 0)
