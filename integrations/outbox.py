"""
The outbox of outbound webhooks (contract §3b).

- `emit` writes the event and one delivery per interested endpoint in the
  CALLER's transaction (a billing service's): the event exists exactly when the
  state change that caused it committed. The delivery task is queued after
  commit; if the broker is down the beat task (`deliver_due_webhooks`) picks it up.
- Delivery is at least once: a delivery is claimed by compare-and-set (a lease
  on `next_attempt_at`), POSTed signed with a 10 s timeout, and on a non-2xx or
  an error retried with exponential backoff until OUTBOUND_WEBHOOK_RETRY_DAYS
  after the event, then marked failed. Every attempt is a DeliveryAttempt row.
- Ordered per subscription where possible: a delivery waits while an earlier
  event with the same `ordering_key` is still pending for the same endpoint.

Nothing here is called by the site's requests except `emit`, which only writes rows.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from datetime import datetime, timedelta

import requests
from celery import shared_task
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from config.tasks import enqueue
from integrations.models import Delivery, DeliveryAttempt, OutboxEvent, WebhookEndpoint

logger = logging.getLogger(__name__)

# A worker holds a claimed delivery this long: more than the request timeout, so two
# workers never send the same delivery at once; a worker that died frees it after.
LEASE = timedelta(seconds=60)
FIRST_RETRY = timedelta(minutes=1)
MAX_RETRY = timedelta(hours=6)
DUE_BATCH = 500
EXCERPT = 500


# ---------------------------------------------------------------------------
# Writing events (inside the caller's transaction)
# ---------------------------------------------------------------------------


def has_endpoints_for(event_type: str) -> bool:
    return any(e.wants(event_type) for e in active_endpoints())


def active_endpoints() -> list[WebhookEndpoint]:
    """Read once by a caller that emits several events (activation: payment.paid and subscription.*)."""
    return list(WebhookEndpoint.objects.filter(is_active=True).only("pk", "events"))


def emit(event_type: str, *, data: dict, ordering_key: str = "", now: datetime, endpoints=None) -> OutboxEvent | None:
    """One event in the current transaction; None when no active endpoint wants it (nothing is written)."""
    return (emit_many(event_type, items=[(data, ordering_key)], now=now, endpoints=endpoints) or [None])[0]


def emit_many(event_type: str, *, items: list[tuple[dict, str]], now: datetime, endpoints=None) -> list[OutboxEvent]:
    """Events of one type for many rows (the sweep's set-based steps): three queries whatever their number."""
    if endpoints is None:
        endpoints = active_endpoints()
    endpoints = [e for e in endpoints if e.wants(event_type)]
    if not endpoints or not items:
        return []
    events = OutboxEvent.objects.bulk_create(
        [OutboxEvent(type=event_type, data=data, ordering_key=key, created_at=now) for data, key in items]
    )
    Delivery.objects.bulk_create(
        [Delivery(event=event, endpoint=endpoint, next_attempt_at=now, created_at=now) for event in events for endpoint in endpoints]
    )
    ids = [str(event.pk) for event in events]
    transaction.on_commit(lambda: _queue_delivery(ids))
    return events


def _queue_delivery(event_ids: list[str]) -> None:
    try:
        enqueue(deliver_events_task, event_ids=event_ids)
    except Exception:  # the rows are committed; the beat task delivers them
        logger.exception("webhook delivery not queued", extra={"count": len(event_ids)})


# ---------------------------------------------------------------------------
# Signing and sending
# ---------------------------------------------------------------------------


def event_body(event: OutboxEvent) -> bytes:
    """The JSON POSTed (contract §3b): {id, type, created_at, data}."""
    document = {"id": str(event.pk), "type": event.type, "created_at": event.created_at.isoformat(), "data": event.data}
    return json.dumps(document, cls=DjangoJSONEncoder, separators=(",", ":"), ensure_ascii=False).encode()


def sign(secret: str, *, timestamp: int, body: bytes) -> str:
    """`t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">` with the endpoint's secret."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def retry_delay(attempts: int) -> timedelta:
    """1 min, 2, 4, ... doubling after each failed attempt, at most 6 h apart."""
    return min(FIRST_RETRY * (2 ** max(attempts - 1, 0)), MAX_RETRY)


_local = threading.local()


def _http() -> requests.Session:
    """One session per worker thread: connections to an endpoint are kept alive between deliveries."""
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
    return session


def _blocked_by_earlier(delivery: Delivery) -> bool:
    """An earlier event of the same subscription/checkout still pending for this endpoint goes first."""
    key = delivery.event.ordering_key
    if not key:
        return False
    # The key's earlier events (a customer's few, by their index), then all their deliveries (one
    # per endpoint, by event id), filtered here. Filtering on the endpoint in SQL let a planner
    # with stale statistics (a new endpoint, a burst) walk every delivery of the endpoint instead.
    earlier = list(
        OutboxEvent.objects.filter(ordering_key=key, created_at__lt=delivery.event.created_at).values_list("pk", flat=True)
    )
    if not earlier:
        return False
    others = Delivery.objects.filter(event_id__in=earlier).exclude(pk=delivery.pk).values_list("endpoint_id", "status")
    return any(endpoint == delivery.endpoint_id and status == Delivery.Status.PENDING for endpoint, status in others)


def attempt_delivery(delivery: Delivery, *, now: datetime | None = None) -> bool | None:
    """
    One attempt: claim, POST, record. Returns True (delivered), False (failed
    this time) or None (not ours to send now: taken, not due, or waiting for
    an earlier event of the same subscription).
    """
    now = now or timezone.now()
    if _blocked_by_earlier(delivery):
        return None
    claimed = Delivery.objects.filter(pk=delivery.pk, status=Delivery.Status.PENDING, next_attempt_at__lte=now).update(
        next_attempt_at=now + LEASE
    )
    if not claimed:
        return None
    event, endpoint = delivery.event, delivery.endpoint
    body = event_body(event)
    timestamp = int(now.timestamp())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "CreatorFlix-Webhooks/1",
        "X-CreatorFlix-Event-Id": str(event.pk),
        "X-CreatorFlix-Signature": sign(endpoint.secret, timestamp=timestamp, body=body),
    }
    status_code, error, excerpt = None, "", ""
    started = time.monotonic()
    try:
        response = _http().post(
            endpoint.url, data=body, headers=headers, timeout=settings.OUTBOUND_WEBHOOK_TIMEOUT, allow_redirects=False
        )
        status_code, excerpt = response.status_code, response.text[:EXCERPT]
    except requests.RequestException as exc:
        error = f"{type(exc).__name__}: {exc}"[:300]
    duration_ms = int((time.monotonic() - started) * 1000)
    ok = status_code is not None and 200 <= status_code < 300
    _record(delivery, ok=ok, status_code=status_code, error=error, excerpt=excerpt, duration_ms=duration_ms, now=now)
    return ok


@transaction.atomic
def _record(delivery, *, ok, status_code, error, excerpt, duration_ms, now) -> None:
    DeliveryAttempt.objects.create(
        delivery=delivery, attempted_at=now, status_code=status_code, error=error,
        response_excerpt=excerpt, duration_ms=duration_ms,
    )
    attempts = delivery.attempts + 1
    if ok:
        Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.DELIVERED, attempts=attempts, delivered_at=now)
        WebhookEndpoint.objects.filter(pk=delivery.endpoint_id, failing_since__isnull=False).update(failing_since=None)
        return
    gave_up = now >= delivery.event.created_at + timedelta(days=settings.OUTBOUND_WEBHOOK_RETRY_DAYS)
    Delivery.objects.filter(pk=delivery.pk).update(
        status=Delivery.Status.FAILED if gave_up else Delivery.Status.PENDING,
        attempts=attempts,
        next_attempt_at=now + retry_delay(attempts),
    )
    WebhookEndpoint.objects.filter(pk=delivery.endpoint_id, failing_since__isnull=True).update(failing_since=now)
    logger.warning(
        "webhook delivery failed",
        extra={"event": str(delivery.event_id), "endpoint": delivery.endpoint_id, "status": status_code, "gave_up": gave_up},
    )


def deliver_due(*, now: datetime | None = None, event_ids=None, limit: int = DUE_BATCH) -> dict:
    """Every due pending delivery (of `event_ids`, or all), oldest event first. Returns counts."""
    now = now or timezone.now()
    due = Delivery.objects.filter(status=Delivery.Status.PENDING, next_attempt_at__lte=now)
    if event_ids is not None:
        due = due.filter(event_id__in=event_ids)
    counts = {"delivered": 0, "failed": 0, "skipped": 0}
    done = set()  # sent here as followers of an earlier one: not to be tried again
    for delivery in due.select_related("event", "endpoint").order_by("event__created_at", "pk")[:limit]:
        if delivery.pk in done:
            continue
        outcome = attempt_delivery(delivery, now=now)
        counts["skipped" if outcome is None else "delivered" if outcome else "failed"] += 1
        if outcome:
            followed = _deliver_followers(delivery, now=now)
            counts["delivered"] += len(followed)
            done.update(followed)
    return counts


def _deliver_followers(delivery: Delivery, *, now: datetime) -> list[int]:
    """After a success, the events of the same key that waited behind it, in order, until one fails. Returns those delivered."""
    key = delivery.event.ordering_key
    delivered = []
    if not key:
        return delivered
    later = OutboxEvent.objects.filter(ordering_key=key, created_at__gte=delivery.event.created_at).values("pk")
    followers = (
        Delivery.objects.filter(event_id__in=later, status=Delivery.Status.PENDING, next_attempt_at__lte=now)
        .exclude(pk=delivery.pk)
        .select_related("event", "endpoint")
        .order_by("event__created_at", "pk")
    )
    for follower in followers:
        if follower.endpoint_id != delivery.endpoint_id:
            continue  # (filtered here for the reason given in _blocked_by_earlier)
        if not attempt_delivery(follower, now=now):
            break
        delivered.append(follower.pk)
    return delivered


@transaction.atomic
def replay_deliveries(*, deliveries, now: datetime | None = None) -> int:
    """The admin's replay: the deliveries are pending and due again (delivered ones are sent once more)."""
    now = now or timezone.now()
    ids = list(deliveries.values_list("pk", flat=True))
    changed = Delivery.objects.filter(pk__in=ids).update(status=Delivery.Status.PENDING, next_attempt_at=now)
    event_ids = sorted({str(pk) for pk in Delivery.objects.filter(pk__in=ids).values_list("event_id", flat=True)})
    transaction.on_commit(lambda: _queue_delivery(event_ids))
    return changed


def failing_endpoints(*, now: datetime | None = None):
    """Active endpoints whose deliveries have failed for more than an hour (the admin index lists them)."""
    now = now or timezone.now()
    return WebhookEndpoint.objects.filter(is_active=True, failing_since__lte=now - timedelta(hours=1)).annotate(
        has_pending=Exists(Delivery.objects.filter(endpoint=OuterRef("pk"), status__in=[Delivery.Status.PENDING, Delivery.Status.FAILED]))
    ).filter(has_pending=True)


# ---------------------------------------------------------------------------
# Tasks (doors)
# ---------------------------------------------------------------------------


@shared_task(name="integrations.tasks.deliver_events")
def deliver_events_task(*, event_ids: list[str]) -> dict:
    """Queued after the commit that wrote the events: their first attempt."""
    return deliver_due(event_ids=event_ids)


@shared_task(name="integrations.tasks.deliver_due_webhooks")
def deliver_due_webhooks_task() -> dict:
    """Beat, every minute (config/beat.py): retries whose backoff has passed, and events whose queueing was lost."""
    return deliver_due()
