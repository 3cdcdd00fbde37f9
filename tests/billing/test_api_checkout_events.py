"""
`GET /api/checkout/events/<id>` (contract §3): connected → payment_confirmed
when a payment is applied anywhere; heartbeats, timeout, failure; who may
listen. The cross-process test runs the stream in a real uvicorn process and
applies the payment in this one, with Redis between them.
"""

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from asgiref.sync import sync_to_async
from django.db import connection, connections
from django.test import AsyncClient
from django.utils import timezone
from prometheus_client import REGISTRY

from billing import services
from billing.models import Checkout
from tests.factories import CheckoutFactory, PlanFactory, UserFactory

ROOT = Path(__file__).resolve().parents[2]
EVENTS_POOL_SIZE = 2


def server_backends() -> set[int]:
    """The PostgreSQL backends of this test's database other than this process's own."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
        return {pid for (pid,) in cursor.fetchall()}


def events_url(checkout) -> str:
    return f"/api/checkout/events/{checkout.public_id}"


def parse(chunk: bytes) -> tuple[str, dict | None]:
    """One server-sent event (or a comment) → (event name, data); a comment is ("comment", None)."""
    text = chunk.decode()
    if text.startswith(":"):
        return "comment", None
    fields = dict(line.split(": ", 1) for line in text.strip().splitlines())
    return fields["event"], json.loads(fields["data"])


def read_all(response) -> list[tuple[str, dict | None]]:
    """A finished WSGI stream, split into its events."""
    body = b"".join(response.streaming_content).decode()
    return [parse(block.encode() + b"\n\n") for block in body.split("\n\n") if block]


def pay(checkout):
    services.activate_checkout(checkout=Checkout.objects.get(pk=checkout.pk), paid_at=timezone.now())


def pay_and_disconnect(checkout):
    """`pay` from a thread of its own, which then closes its database connection (the next tests count them)."""
    try:
        pay(checkout)
    finally:
        connections.close_all()


@pytest.mark.django_db
def test_an_already_paid_checkout_is_confirmed_at_once(client):
    checkout = CheckoutFactory()
    pay(checkout)

    response = client.get(events_url(checkout))

    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"
    assert response["X-Accel-Buffering"] == "no"
    events = read_all(response)
    assert [name for name, _data in events] == ["connected", "payment_confirmed"]
    # The payload is the poll's JSON, byte for byte the same fields.
    assert events[1][1] == client.get(f"/api/checkout/{checkout.public_id}").json()
    assert events[1][1]["status"] == "paid"


@pytest.mark.django_db
def test_an_open_stream_is_counted_for_metrics_until_it_ends(client):
    checkout = CheckoutFactory()
    before = REGISTRY.get_sample_value("creatorflix_sse_streams_open") or 0
    response = client.get(events_url(checkout))
    chunks = iter(response.streaming_content)

    next(chunks)  # connected: the stream is open
    assert REGISTRY.get_sample_value("creatorflix_sse_streams_open") == before + 1

    response.close()  # the buyer left: the stream's generator is closed
    assert REGISTRY.get_sample_value("creatorflix_sse_streams_open") == before


@pytest.mark.django_db
def test_a_failed_checkout_ends_with_payment_failed(client):
    checkout = CheckoutFactory(status=Checkout.Status.FAILED)

    events = read_all(client.get(events_url(checkout)))

    assert [name for name, _data in events] == ["connected", "payment_failed"]
    assert events[1][1]["status"] == "failed"


@pytest.mark.django_db
def test_a_waiting_stream_sends_heartbeats_then_times_out(client, settings):
    settings.CHECKOUT_EVENTS_HEARTBEAT_SECONDS = 0.05
    settings.CHECKOUT_EVENTS_TIMEOUT_SECONDS = 0.3
    checkout = CheckoutFactory()

    events = read_all(client.get(events_url(checkout)))

    names = [name for name, _data in events]
    assert names[0] == "connected" and names[-1] == "timeout"
    assert names.count("comment") >= 3
    assert events[-1][1]["status"] == "pending"


@pytest.mark.django_db
def test_another_accounts_checkout_is_not_found(client):
    checkout = CheckoutFactory(user=UserFactory())
    client.force_login(UserFactory())

    response = client.get(events_url(checkout))

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.django_db
def test_a_logged_out_holder_of_an_accounts_checkout_never_sees_its_subscription(client):
    checkout = CheckoutFactory(user=UserFactory())
    pay(checkout)

    events = read_all(client.get(events_url(checkout)))

    assert events[-1][0] == "payment_confirmed"
    assert events[-1][1]["subscription"] is None


@pytest.mark.django_db(transaction=True)
def test_without_redis_a_payment_reaches_the_stream_in_process(settings):
    # given: no Redis (make run), a stream held under ASGI
    settings.REDIS_URL = ""
    settings.CHECKOUT_EVENTS_HEARTBEAT_SECONDS = 0.05
    checkout = CheckoutFactory()

    async def scenario():
        response = await AsyncClient().get(events_url(checkout))
        stream = aiter(response.streaming_content)
        connected = parse(await anext(stream))
        # when: the payment is applied by another thread (as a webhook request would)
        await sync_to_async(pay_and_disconnect, thread_sensitive=False)(checkout)
        names = []
        async for chunk in stream:
            names.append(parse(chunk))
        return connected, names

    connected, rest = asyncio.run(asyncio.wait_for(scenario(), 10))

    # then
    assert connected[0] == "connected" and connected[1]["status"] == "pending"
    assert rest[-1][0] == "payment_confirmed" and rest[-1][1]["status"] == "paid"
    # The news itself woke the stream: heartbeats came only while it waited.
    assert {name for name, _data in rest[:-1]} <= {"comment"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def uvicorn_server(settings):
    """The project's ASGI application in a uvicorn process of its own, on this test's database and Redis."""
    port = _free_port()
    db = connection.settings_dict
    env = {
        **os.environ,
        "DEBUG": "false",
        "SECRET_KEY": "test-only-" + "x" * 40,
        "FIELD_ENCRYPTION_KEY": settings.FIELD_ENCRYPTION_KEY,
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
        "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        "DATABASE_POOL_SIZE": str(EVENTS_POOL_SIZE),  # as docker-compose's `events` service runs, smaller
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(f"{base}/healthz", timeout=10)
            break
        except requests.RequestException as exc:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"uvicorn did not start: {process.stdout.read().decode()[-2000:]}") from exc
            time.sleep(0.2)
    yield base
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_payment_applied_here_reaches_a_stream_held_by_a_uvicorn_process(uvicorn_server):
    # given: a buyer's page listening on a stream served by another process
    checkout = CheckoutFactory(plan=PlanFactory())
    response = requests.get(f"{uvicorn_server}{events_url(checkout)}", stream=True, timeout=20)
    assert response.status_code == 200 and response.headers["Content-Type"] == "text/event-stream"
    chunks = (chunk for chunk in response.iter_lines(delimiter=b"\n\n") if chunk)
    name, data = parse(next(chunks))
    assert name == "connected" and data["status"] == "pending"

    # when: this process applies the payment (as the web process handling the postback would)
    started = time.monotonic()
    pay(checkout)

    # then: the stream says so, and ends
    name, data = parse(next(chunks))
    seen_after = time.monotonic() - started
    assert name == "payment_confirmed"
    assert data["status"] == "paid" and data["checkout_id"] == str(checkout.public_id)
    assert seen_after < 2  # pushed, not found by the 15 s heartbeat's look at the cache
    assert list(chunks) == []
    response.close()


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_the_events_server_reads_through_a_pool_of_a_few_connections_however_many_streams_are_open(uvicorn_server):
    # given: many more waiting streams than the pool has connections
    checkouts = [CheckoutFactory(plan=PlanFactory()) for _ in range(4 * EVENTS_POOL_SIZE)]
    streams = []
    for checkout in checkouts:
        response = requests.get(f"{uvicorn_server}{events_url(checkout)}", stream=True, timeout=20)
        chunks = (chunk for chunk in response.iter_lines(delimiter=b"\n\n") if chunk)
        assert parse(next(chunks))[0] == "connected"
        streams.append((response, chunks))
    # then: the server holds at most the pool's connections (one per stream would pass max_connections)
    backends = server_backends()
    assert 0 < len(backends) <= EVENTS_POOL_SIZE

    # when: every checkout is paid
    for checkout in checkouts:
        pay(checkout)

    # then: every stream hears it, its final read borrowing one of the pool's connections
    # (PostgreSQL did not start a backend per read)
    for response, chunks in streams:
        name, data = parse(next(chunks))
        assert name == "payment_confirmed" and data["status"] == "paid"
        response.close()
    assert len(backends | server_backends()) <= EVENTS_POOL_SIZE

