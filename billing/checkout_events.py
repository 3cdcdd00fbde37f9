"""
The checkout page's event stream (`GET /api/checkout/events/<id>`, contract
§3): the page learns of its payment the moment it is applied, by whichever
web process or worker applied it.

News: every checkout status change is written through billing/checkout_status.py
(`publish_after_commit`), which, after commit, calls `announce` here with
the checkout id and its new status. With `REDIS_URL` that is one Redis
PUBLISH on one channel; each process serving streams holds ONE subscription
to it (a relay per event loop, `redis.asyncio`), and hands each message to the
streams it holds for that checkout. Without Redis (`make run`) `announce`
hands it over in-process. Either way the news carries no personal data: a
stream re-reads the poll's answer for its own holder (`answer`) before it
says anything.

A stream never trusts it heard everything: at each heartbeat it looks at the
cached status (one cache read per stream per heartbeat), so a news item lost
on the way (Redis down at that instant) costs at most one heartbeat. When the
relay loses Redis, its streams end: the page reconnects (EventSource) or falls
back to polling, and a reconnect that finds the checkout paid says so at once.

Streams are served by an ASGI server (uvicorn) so that an open one holds no
sync worker; under runserver (WSGI, `make run`) the same stream runs as a
blocking iterator (`stream_sync`) on runserver's own thread.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager

import redis
import redis.asyncio as aioredis
from asgiref.sync import SyncToAsync, sync_to_async
from django.conf import settings

from billing.models import Checkout

logger = logging.getLogger(__name__)

CONFIRMED = "payment_confirmed"
FAILED = "payment_failed"
HEARTBEAT = b": heartbeat\n\n"
# What a stream is told when its relay lost Redis: end, the page reconnects or polls.
LOST = object()
FAILED_STATUSES = (Checkout.Status.FAILED, Checkout.Status.EXPIRED, Checkout.Status.CANCELED, Checkout.Status.REFUNDED)
# How long a new stream waits for its process's Redis subscription before giving up (the page then polls).
RELAY_READY_SECONDS = 5


def final_event(payload: dict) -> str | None:
    """The event that ends a stream for this poll answer, or None while the checkout is still payable."""
    if payload["status"] == Checkout.Status.PAID:
        return CONFIRMED
    if payload["status"] in FAILED_STATUSES:
        return FAILED
    return None


def event(name: str, payload: dict) -> bytes:
    return f"event: {name}\ndata: {json.dumps(payload, separators=(',', ':'))}\n\n".encode()


def channel() -> str:
    """Redis pub/sub ignores database numbers: the channel names the site's database, so sites sharing a Redis never hear each other."""
    db = redis.connection.parse_url(settings.REDIS_URL).get("db", 0)
    return f"creatorflix:{db}:checkout-events"


# ---------------------------------------------------------------------------
# Who waits for what, in this process
# ---------------------------------------------------------------------------


class _Waiting:
    """The streams this process holds, by checkout id: any thread or event loop may add, remove or deliver."""

    def __init__(self):
        self._lock = threading.Lock()
        self._by_checkout: dict[str, set[Callable]] = {}

    def add(self, checkout_id: str, deliver: Callable) -> None:
        with self._lock:
            self._by_checkout.setdefault(checkout_id, set()).add(deliver)

    def remove(self, checkout_id: str, deliver: Callable) -> None:
        with self._lock:
            waiting = self._by_checkout.get(checkout_id, set())
            waiting.discard(deliver)
            if not waiting:
                self._by_checkout.pop(checkout_id, None)

    def deliver(self, checkout_id: str, news) -> None:
        with self._lock:
            targets = list(self._by_checkout.get(checkout_id, ()))
        for deliver in targets:
            deliver(news)

    def deliver_to_all(self, news) -> None:
        with self._lock:
            targets = [deliver for waiting in self._by_checkout.values() for deliver in waiting]
        for deliver in targets:
            deliver(news)


waiting = _Waiting()


# ---------------------------------------------------------------------------
# Publishing (after commit, from billing/checkout_status.py)
# ---------------------------------------------------------------------------

_publishers: dict[str, redis.Redis] = {}


def _publisher() -> redis.Redis:
    # One client (and connection pool) per URL for the process; redis-py's clients are thread-safe.
    if settings.REDIS_URL not in _publishers:
        _publishers[settings.REDIS_URL] = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    return _publishers[settings.REDIS_URL]


def announce(changes: list[tuple[str, str]]) -> None:
    """
    Tell every stream of these checkouts, in any process, their new status:
    `changes` are (checkout id, status). Never raises: a lost news item costs
    its streams one heartbeat (they look at the cached status then).
    """
    if not changes:
        return
    if not settings.REDIS_URL:
        for checkout_id, status in changes:
            waiting.deliver(checkout_id, status)
        return
    try:
        with _publisher().pipeline(transaction=False) as pipe:
            for checkout_id, status in changes:
                pipe.publish(channel(), json.dumps({"checkout_id": checkout_id, "status": status}))
            pipe.execute()
    except redis.RedisError:
        logger.warning("checkout events not published", extra={"count": len(changes)}, exc_info=True)


# ---------------------------------------------------------------------------
# The relay: one Redis subscription per event loop (one per ASGI worker process)
# ---------------------------------------------------------------------------


class _Relay:
    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.ready: asyncio.Future = loop.create_future()
        self.task = loop.create_task(self._run())

    async def _run(self) -> None:
        client = aioredis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=RELAY_READY_SECONDS)
        pubsub = client.pubsub()
        try:
            await pubsub.subscribe(channel())
            async for message in pubsub.listen():
                if message["type"] == "subscribe" and not self.ready.done():
                    self.ready.set_result(True)
                elif message["type"] == "message":
                    news = json.loads(message["data"])
                    waiting.deliver(news["checkout_id"], news["status"])
        except Exception as error:
            logger.warning("checkout events relay lost Redis", exc_info=True)
            if not self.ready.done():
                self.ready.set_exception(error)
        finally:
            _relays.pop(asyncio.get_running_loop(), None)
            waiting.deliver_to_all(LOST)
            await pubsub.aclose()
            await client.aclose()


_relays: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Relay] = weakref.WeakKeyDictionary()


async def _relay_ready() -> None:
    loop = asyncio.get_running_loop()
    relay = _relays.get(loop)
    if relay is None or relay.task.done():
        relay = _relays[loop] = _Relay(loop)
    await asyncio.wait_for(asyncio.shield(relay.ready), RELAY_READY_SECONDS)


# ---------------------------------------------------------------------------
# Streams
# ---------------------------------------------------------------------------


@asynccontextmanager
async def _listening(checkout_id: str):
    """Registered (and, with Redis, this process subscribed) before the caller reads the status: no news falls between."""
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue = asyncio.Queue()

    def deliver(news) -> None:
        try:
            loop.call_soon_threadsafe(inbox.put_nowait, news)
        except RuntimeError:
            pass  # that loop has closed: its stream is gone

    waiting.add(checkout_id, deliver)
    try:
        if settings.REDIS_URL:
            await _relay_ready()
        yield inbox
    finally:
        waiting.remove(checkout_id, deliver)


def _release_request_thread() -> None:
    """
    Under ASGI Django gives every request a thread of its own for its sync
    parts (middleware), kept until the response ends: one idle thread per
    open stream, hundreds of them. Once the middleware has returned (the
    body is streaming) that thread has nothing left to do: shut it down now.
    A later thread-sensitive call of this request (Django closing the
    response) gets a fresh one for that moment. The stream's own reads run
    on the loop's shared pool (thread_sensitive=False).
    asgiref keeps these executors in SyncToAsync.context_to_thread_executor
    (asgiref 3.x); if that ever moves, the thread simply stays, as before.
    """
    context = SyncToAsync.thread_sensitive_context.get(None)
    executors = getattr(SyncToAsync, "context_to_thread_executor", None)
    if context is None or executors is None:
        return
    executor = executors.pop(context, None)
    if executor is not None:
        executor.shutdown(wait=False)


async def stream_async(checkout_id: str, answer: Callable[[], dict], peek: Callable[[], str | None]) -> AsyncIterator[bytes]:
    """
    The stream under ASGI. `answer()` is the poll's JSON for this holder (sync,
    run in a thread); `peek()` the cached status, or None (sync: a cache read).
    connected → (payment_confirmed | payment_failed | timeout), a heartbeat
    comment in between.
    """
    loop = asyncio.get_running_loop()
    _release_request_thread()
    read = sync_to_async(answer, thread_sensitive=False)
    try:
        async with _listening(checkout_id) as inbox:
            payload = await read()
            yield event("connected", payload)
            deadline = loop.time() + settings.CHECKOUT_EVENTS_TIMEOUT_SECONDS
            while final_event(payload) is None:
                left = deadline - loop.time()
                if left <= 0:
                    yield event("timeout", payload)
                    return
                try:
                    news = await asyncio.wait_for(inbox.get(), min(settings.CHECKOUT_EVENTS_HEARTBEAT_SECONDS, left))
                except TimeoutError:
                    news = await sync_to_async(peek, thread_sensitive=False)()
                    if news in (None, Checkout.Status.PENDING):
                        yield HEARTBEAT
                        continue
                if news is LOST:
                    return
                payload = await read()
            yield event(final_event(payload), payload)
    except (TimeoutError, redis.RedisError, OSError):
        logger.warning("checkout events: no Redis subscription; the page polls", extra={"checkout": checkout_id})


class _RedisInbox:
    """A blocking inbox on its own Redis subscription (a stream served by a sync worker: runserver with REDIS_URL)."""

    def __init__(self, checkout_id: str):
        self.checkout_id = checkout_id
        self.client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=RELAY_READY_SECONDS)
        self.pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        self.pubsub.subscribe(channel())

    def get(self, timeout: float):
        end = time.monotonic() + timeout
        while (left := end - time.monotonic()) > 0:
            message = self.pubsub.get_message(timeout=left)
            if message and message["type"] == "message":
                news = json.loads(message["data"])
                if news["checkout_id"] == self.checkout_id:
                    return news["status"]
        raise queue.Empty

    def close(self) -> None:
        self.pubsub.close()
        self.client.close()


class _LocalInbox:
    def __init__(self, checkout_id: str):
        self.checkout_id = checkout_id
        self.queue: queue.Queue = queue.Queue()
        waiting.add(checkout_id, self.queue.put)

    def get(self, timeout: float):
        return self.queue.get(timeout=timeout)

    def close(self) -> None:
        waiting.remove(self.checkout_id, self.queue.put)


@contextmanager
def _listening_sync(checkout_id: str):
    inbox = _RedisInbox(checkout_id) if settings.REDIS_URL else _LocalInbox(checkout_id)
    try:
        yield inbox
    finally:
        inbox.close()


def stream_sync(checkout_id: str, answer: Callable[[], dict], peek: Callable[[], str | None]) -> Iterator[bytes]:
    """The same stream as a blocking iterator, for a WSGI server (runserver under `make run`)."""
    with _listening_sync(checkout_id) as inbox:
        payload = answer()
        yield event("connected", payload)
        deadline = time.monotonic() + settings.CHECKOUT_EVENTS_TIMEOUT_SECONDS
        while final_event(payload) is None:
            left = deadline - time.monotonic()
            if left <= 0:
                yield event("timeout", payload)
                return
            try:
                inbox.get(min(settings.CHECKOUT_EVENTS_HEARTBEAT_SECONDS, left))
            except queue.Empty:
                if peek() in (None, Checkout.Status.PENDING):
                    yield HEARTBEAT
                    continue
            payload = answer()
        yield event(final_event(payload), payload)
