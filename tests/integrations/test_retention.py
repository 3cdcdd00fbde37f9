"""integrations/retention.py: the outbox keeps what is still owed and prunes what was delivered long ago."""

from datetime import timedelta

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.utils import timezone

from accounts.tasks import clear_expired_sessions
from config.beat import PERIODIC_TASKS
from integrations.models import Delivery, DeliveryAttempt, OutboxEvent, WebhookEndpoint
from integrations.retention import prune_outbox, prune_outbox_task

pytestmark = pytest.mark.django_db


def _event(endpoint, *, age_days, status, now, attempts=1):
    created = now - timedelta(days=age_days)
    event = OutboxEvent.objects.create(type="payment.paid", data={"customer": {"email": "ana@example.com"}}, created_at=created)
    delivery = Delivery.objects.create(
        event=event, endpoint=endpoint, status=status, created_at=created, next_attempt_at=created,
        delivered_at=created if status == Delivery.Status.DELIVERED else None,
    )
    for _ in range(attempts):
        DeliveryAttempt.objects.create(delivery=delivery, attempted_at=created, status_code=200)
    return event


def test_delivered_deliveries_past_the_retention_go_with_their_attempts_and_events(settings):
    # given
    settings.OUTBOX_RETENTION_DAYS = 90
    now = timezone.now()
    endpoint = WebhookEndpoint.objects.create(url="https://receiver.example.com/hook")
    old_delivered = [_event(endpoint, age_days=91 + i, status=Delivery.Status.DELIVERED, now=now, attempts=2) for i in range(5)]
    recent = _event(endpoint, age_days=89, status=Delivery.Status.DELIVERED, now=now)
    old_failed = _event(endpoint, age_days=400, status=Delivery.Status.FAILED, now=now)
    old_pending = _event(endpoint, age_days=200, status=Delivery.Status.PENDING, now=now)

    # when: in batches smaller than the backlog
    counts = prune_outbox(now=now, batch_size=2)

    # then
    assert counts == {"deliveries": 5, "events": 5}
    assert not OutboxEvent.objects.filter(pk__in=[e.pk for e in old_delivered]).exists()
    assert set(OutboxEvent.objects.values_list("pk", flat=True)) == {recent.pk, old_failed.pk, old_pending.pk}
    assert DeliveryAttempt.objects.count() == 3
    assert prune_outbox(now=now) == {"deliveries": 0, "events": 0}  # safe to run again


def test_an_event_of_an_event_type_no_endpoint_wanted_is_pruned_once_old(settings):
    settings.OUTBOX_RETENTION_DAYS = 90
    now = timezone.now()
    OutboxEvent.objects.create(type="payment.paid", data={}, created_at=now - timedelta(days=100))
    OutboxEvent.objects.create(type="payment.paid", data={}, created_at=now - timedelta(days=10))

    assert prune_outbox(now=now) == {"deliveries": 0, "events": 1}


def test_prune_outbox_and_clear_sessions_run_daily_from_beat():
    daily = {spec["task"]: spec for spec in PERIODIC_TASKS if "crontab" in spec}

    assert {"integrations.tasks.prune_outbox", "accounts.tasks.clear_expired_sessions"} <= set(daily)
    assert prune_outbox_task.name == "integrations.tasks.prune_outbox"


def test_expired_sessions_are_cleared():
    expired = SessionStore()
    expired["x"] = 1
    expired.set_expiry(-10)
    expired.create()
    live = SessionStore()
    live["x"] = 1
    live.create()

    clear_expired_sessions()

    assert list(Session.objects.values_list("session_key", flat=True)) == [live.session_key]
