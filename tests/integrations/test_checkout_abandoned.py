"""Contract §3b: `checkout.abandoned` is emitted by the sweep when an unpaid checkout gets its first reminder."""

from datetime import timedelta
from unittest import mock

import pytest
from django.db import transaction
from django.utils import timezone

from billing import services
from billing.models import Checkout
from integrations import outbox
from integrations.models import OutboxEvent, WebhookEndpoint
from tests.factories import PlanFactory
from tests.integrations.receiver import Receiver

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _steps(settings):
    settings.CHECKOUT_RECOVERY_MINUTES = (30, 1440)


def _unpaid(now, email="ana@example.com", **kwargs):
    return services.create_checkout(
        plan=PlanFactory(price_cents=2990), customer_name="Ana Souza", customer_email=email,
        customer_document="52998224725", customer_phone="11987654321", now=now,
        tracking={"last": {"utm_source": "instagram"}}, **kwargs,
    )


def test_the_first_reminder_emits_checkout_abandoned_once(django_capture_on_commit_callbacks):
    now = timezone.now().replace(microsecond=0)
    WebhookEndpoint.objects.create(url="http://127.0.0.1:9/", events=["checkout.abandoned"])
    checkout = _unpaid(now)
    with mock.patch.object(outbox, "_queue_delivery"), django_capture_on_commit_callbacks(execute=True):
        assert services.sweep_subscriptions(now=now + timedelta(minutes=29)).reminders_sent == 0
        assert not OutboxEvent.objects.filter(type="checkout.abandoned").exists()

        assert services.sweep_subscriptions(now=now + timedelta(minutes=31)).reminders_sent == 1
        services.sweep_subscriptions(now=now + timedelta(minutes=35))  # no reminder: no event
        assert services.sweep_subscriptions(now=now + timedelta(minutes=1441)).reminders_sent == 1  # the second one

    events = list(OutboxEvent.objects.filter(type="checkout.abandoned"))
    assert len(events) == 1
    data = events[0].data
    assert data["checkout_id"] == str(checkout.public_id)
    assert data["total_amount"] == 2990 and data["customer"]["email"] == "ana@example.com"
    assert data["tracking"]["utm_source"] == "instagram"
    assert events[0].created_at == now + timedelta(minutes=31)


def test_a_checkout_past_both_steps_at_once_gets_its_event_with_its_only_reminder(django_capture_on_commit_callbacks):
    now = timezone.now().replace(microsecond=0)
    WebhookEndpoint.objects.create(url="http://127.0.0.1:9/", events=["checkout.abandoned"])
    late = _unpaid(now - timedelta(minutes=1441), email="late@example.com")
    fresh = _unpaid(now - timedelta(minutes=31), email="fresh@example.com")
    _unpaid(now - timedelta(minutes=5), email="early@example.com")  # not due yet
    with mock.patch.object(outbox, "_queue_delivery"), django_capture_on_commit_callbacks(execute=True):
        assert services.sweep_subscriptions(now=now).reminders_sent == 2
    ids = sorted(e.data["checkout_id"] for e in OutboxEvent.objects.filter(type="checkout.abandoned"))
    assert ids == sorted([str(late.public_id), str(fresh.public_id)])
    assert Checkout.objects.get(pk=late.pk).recovery_reminders_sent == 2


def test_the_event_is_written_with_the_compare_and_set_or_not_at_all():
    now = timezone.now().replace(microsecond=0)
    WebhookEndpoint.objects.create(url="http://127.0.0.1:9/", events=["checkout.abandoned"])
    checkout = _unpaid(now)
    with mock.patch.object(outbox, "_queue_delivery"), pytest.raises(RuntimeError), transaction.atomic():
        services.sweep_subscriptions(now=now + timedelta(minutes=31))
        assert OutboxEvent.objects.filter(type="checkout.abandoned").count() == 1
        raise RuntimeError("the step's transaction rolls back")
    assert not OutboxEvent.objects.filter(type="checkout.abandoned").exists()
    assert Checkout.objects.get(pk=checkout.pk).recovery_reminders_sent == 0


def test_a_receiver_gets_checkout_abandoned_signed(django_capture_on_commit_callbacks):
    now = timezone.now().replace(microsecond=0)
    with Receiver() as receiver:
        endpoint = WebhookEndpoint.objects.create(url=receiver.url, events=["checkout.abandoned"])
        receiver.secret = endpoint.secret
        checkout = _unpaid(now - timedelta(minutes=31))
        with django_capture_on_commit_callbacks(execute=True):  # the commit queues the delivery
            services.sweep_subscriptions(now=now)
        assert receiver.types() == ["checkout.abandoned"]
        _, body, valid = receiver.received[0]
        assert valid and body["data"]["checkout_id"] == str(checkout.public_id)
