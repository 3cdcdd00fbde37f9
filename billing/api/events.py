"""
`GET /api/checkout/events/<checkout_id>` (contract §3): the checkout page's
server-sent events. A plain async Django view, not DRF: an open stream must
hold no sync worker, so in production nginx routes this path to the ASGI
server (uvicorn under gunicorn, docs/operations.md). The stream itself is
billing/checkout_events.py; this door checks who asks and frames the answer.
"""

from functools import partial

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.db import connections
from django.http import StreamingHttpResponse
from django.views.decorators.http import require_GET

from billing.api.checkout import poll_answer
from billing.checkout_events import stream_async, stream_sync
from billing.checkout_status import cached_status
from billing.exceptions import CheckoutNotFound
from config.api_errors import json_error
from config.metrics import open_sse_stream


def _answer(request, checkout_id: str) -> dict:
    """
    The poll's answer for this holder, giving its database connection back.
    A stream lives for minutes and Django closes a request's connection only
    when its response ends: without this an events process would hold one
    PostgreSQL connection per open stream (hundreds: past max_connections).
    The events server runs with DATABASE_POOL_SIZE: "closing" returns the
    connection to the process's pool, shared by all its streams.
    """
    try:
        return poll_answer(request, checkout_id)
    finally:
        for connection in connections.all(initialized_only=True):
            if not connection.in_atomic_block:  # a test's transaction stays its own
                connection.close()


def _peek(checkout_id: str) -> str | None:
    cached = cached_status(checkout_id)
    return cached["status"] if cached else None


async def _counted_async(stream):
    with open_sse_stream():  # /metrics: streams open now
        async for chunk in stream:
            yield chunk


def _counted_sync(stream):
    with open_sse_stream():
        yield from stream


@require_GET
async def checkout_events(request, checkout_id):
    checkout_id = str(checkout_id)
    answer = partial(_answer, request, checkout_id)
    asgi = isinstance(request, ASGIRequest)
    try:
        # Who may see it is decided before the stream starts: a 404 is an answer, not an event.
        # Under ASGI on the loop's shared threads (the stream's reads too, checkout_events).
        await sync_to_async(answer, thread_sensitive=not asgi)()
    except CheckoutNotFound as error:
        return json_error(error.code, error.message, 404)
    peek = partial(_peek, checkout_id)
    if asgi:
        stream = _counted_async(stream_async(checkout_id, answer, peek))
    else:
        # A WSGI server (runserver under `make run`) cannot iterate an async stream without buffering it whole.
        stream = _counted_sync(stream_sync(checkout_id, answer, peek))
    response = StreamingHttpResponse(stream, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx passes each event on at once
    return response
