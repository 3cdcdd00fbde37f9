"""Outbound webhooks (contract §3b) against a real local HTTP receiver."""

from datetime import timedelta
from unittest import mock

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from billing import services
from billing.models import Checkout, Subscription
from integrations import outbox
from integrations.models import Delivery, DeliveryAttempt, OutboxEvent, WebhookEndpoint
from tests.billing.paymentkit import sandbox
from tests.factories import CheckoutFactory, PlanFactory, SubscriptionFactory, UserFactory
from tests.integrations.receiver import Receiver

pytestmark = pytest.mark.django_db

VALID = {"payment_method": "pix", "name": "Ana Souza", "email": "ana@example.com", "cpf": "529.982.247-25", "phone": "(11) 98765-4321", "birth_date": "1990-05-20"}


def _endpoint(receiver, **kwargs):
    endpoint = WebhookEndpoint.objects.create(url=receiver.url, **kwargs)
    receiver.secret = endpoint.secret
    return endpoint


def _paid_checkout(django_capture_on_commit_callbacks, **kwargs):
    user = UserFactory(email="ana@example.com")
    checkout = services.create_checkout(
        plan=PlanFactory(price_cents=2990), customer_name="Ana Souza", customer_email="ana@example.com",
        customer_phone="11987654321", user=user,
        tracking={"last": {"utm_source": "instagram", "fbclid": "IwAR0"}}, **kwargs,
    )
    with django_capture_on_commit_callbacks(execute=True):
        services.activate_checkout(checkout=checkout)
    return checkout


def test_a_paid_checkout_sends_payment_paid_and_subscription_activated_signed(django_capture_on_commit_callbacks):
    with Receiver() as receiver:
        endpoint = _endpoint(receiver, events=["payment.paid", "subscription.activated"])
        # when a checkout is paid
        checkout = _paid_checkout(django_capture_on_commit_callbacks)
        # then the receiver got both events, in order, signed with the endpoint's secret
        assert receiver.types() == ["payment.paid", "subscription.activated"]
        assert all(valid for _, _, valid in receiver.received)
        headers, paid, _ = receiver.received[0]
        assert headers["X-CreatorFlix-Event-Id"] == paid["id"]
        assert set(paid) == {"id", "type", "created_at", "data"}
        assert paid["data"]["checkout_id"] == str(checkout.public_id)
        assert paid["data"]["total_amount"] == 2990
        assert paid["data"]["customer"] == {"name": "Ana Souza", "email": "ana@example.com", "phone": "11987654321"}
        assert paid["data"]["tracking"] == {"utm_source": "instagram", "fbclid": "IwAR0"}
        activated = receiver.received[1][1]["data"]
        assert activated["status"] == "active" and activated["checkout_id"] == str(checkout.public_id)
    assert Delivery.objects.filter(endpoint=endpoint, status=Delivery.Status.DELIVERED).count() == 2
    assert DeliveryAttempt.objects.filter(status_code=200).count() == 2


def test_a_signature_made_with_another_secret_does_not_verify():
    from tests.integrations.receiver import verify

    body = b'{"id":"x"}'
    assert verify("whsec_a", outbox.sign("whsec_a", timestamp=1, body=body), body)
    assert not verify("whsec_b", outbox.sign("whsec_a", timestamp=1, body=body), body)


def test_events_are_written_in_the_transaction_of_the_state_change():
    WebhookEndpoint.objects.create(url="http://127.0.0.1:9/")
    plan = PlanFactory()
    with pytest.raises(RuntimeError):
        from django.db import transaction

        with transaction.atomic():
            services.create_checkout(plan=plan, customer_name="Ana", customer_email="a@example.com")
            assert OutboxEvent.objects.filter(type="checkout.created").count() == 1
            raise RuntimeError("rolled back")
    assert not OutboxEvent.objects.exists() and not Checkout.objects.exists()


def test_a_receiver_failing_three_times_gets_the_event_exactly_once_more_after_recovery(django_capture_on_commit_callbacks):
    now = timezone.now()
    with Receiver(answers=[500, 500, 500]) as receiver:
        _endpoint(receiver, events=["checkout.created"])
        # given: the first attempt (after commit) fails
        with django_capture_on_commit_callbacks(execute=True):
            services.create_checkout(plan=PlanFactory(), customer_name="Ana", customer_email="a@example.com", now=now)
        delivery = Delivery.objects.get()
        assert (delivery.status, delivery.attempts) == (Delivery.Status.PENDING, 1)
        # when the retries run as their backoff passes
        later = now
        for _ in range(4):
            later = Delivery.objects.get().next_attempt_at + timedelta(seconds=1)
            outbox.deliver_due(now=later)
        # then: 3 failures, one success, and nothing more afterwards
        for _ in range(3):
            outbox.deliver_due(now=later + timedelta(days=1))
        assert [status for status in DeliveryAttempt.objects.order_by("attempted_at", "pk").values_list("status_code", flat=True)] == [500, 500, 500, 200]
        assert len(receiver.received) == 4 and len({body["id"] for _, body, _ in receiver.received}) == 1
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.DELIVERED and delivery.attempts == 4
    assert WebhookEndpoint.objects.get().failing_since is None


def test_a_delivery_failing_for_three_days_is_marked_failed_and_the_endpoint_shows_on_the_admin_index(admin_client):
    now = timezone.now()
    endpoint = WebhookEndpoint.objects.create(url="http://127.0.0.1:9/unreachable")
    outbox.emit("checkout.created", data={"x": 1}, now=now - timedelta(days=3, minutes=1))
    delivery = Delivery.objects.get()
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=now - timedelta(hours=2))
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=now - timedelta(days=3))

    outbox.deliver_due(now=now)

    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.FAILED
    assert DeliveryAttempt.objects.get().error.startswith("ConnectionError")
    page = admin_client.get(reverse("admin:index"))
    assert b"failing-webhook-endpoints" in page.content and b"127.0.0.1:9/unreachable" in page.content


def test_the_backoff_doubles_and_is_capped():
    assert [outbox.retry_delay(n) for n in (1, 2, 3)] == [timedelta(minutes=1), timedelta(minutes=2), timedelta(minutes=4)]
    assert outbox.retry_delay(30) == timedelta(hours=6)


def test_events_of_one_customer_wait_for_the_earlier_one(django_capture_on_commit_callbacks):
    now = timezone.now()
    with Receiver(answers=[500]) as receiver:
        _endpoint(receiver)
        checkout = CheckoutFactory(customer_email="ana@example.com", created_at=now)
        from billing.services.outbox import emit_checkout_event

        with django_capture_on_commit_callbacks(execute=True):
            emit_checkout_event("checkout.created", checkout, now=now)
        with django_capture_on_commit_callbacks(execute=True):
            emit_checkout_event("payment.paid", checkout, now=now + timedelta(seconds=1))
        # the second waited behind the first (which failed); none was sent out of order
        assert receiver.types() == ["checkout.created"]
        outbox.deliver_due(now=now + timedelta(minutes=5))
        assert receiver.types() == ["checkout.created", "checkout.created", "payment.paid"]


def test_the_site_does_not_wait_for_a_hanging_receiver(client, settings, django_capture_on_commit_callbacks):
    settings.SANDBOX_GATEWAY_ALLOWED = True
    sandbox()
    with Receiver() as receiver:
        _endpoint(receiver, events=["checkout.created"])
        receiver.hang.set()
        queued = []
        # the broker takes the task; it is run (by a worker) only after the response
        with mock.patch.object(outbox.deliver_events_task, "apply_async", side_effect=lambda **kw: queued.append(kw)), \
                django_capture_on_commit_callbacks(execute=True):
            response = client.post("/api/checkout/process", {**VALID, "plan_id": PlanFactory().pk}, content_type="application/json")
        assert response.status_code == 201
        assert receiver.received == []  # answered before the receiver was ever contacted
        assert len(queued) == 1
        receiver.release.set()
        outbox.deliver_events_task.apply(kwargs=queued[0]["kwargs"])
        assert receiver.types() == ["checkout.created"]


def test_the_sweep_emits_past_due_and_expired_for_the_rows_it_changed(django_capture_on_commit_callbacks):
    now = timezone.now()
    WebhookEndpoint.objects.create(url="http://127.0.0.1:9/", events=["subscription.past_due", "subscription.expired"])
    due = SubscriptionFactory(start_date=now - timedelta(days=31), end_date=now - timedelta(hours=1))
    gone = SubscriptionFactory(start_date=now - timedelta(days=40), end_date=now - timedelta(days=10))
    SubscriptionFactory()  # still active: no event
    with mock.patch.object(outbox, "_queue_delivery"):
        services.sweep_subscriptions(now=now)
    events = {e.type: e.data for e in OutboxEvent.objects.all()}
    assert set(events) == {"subscription.past_due", "subscription.expired"}
    assert events["subscription.past_due"]["id"] == due.pk and events["subscription.past_due"]["status"] == "past_due"
    assert events["subscription.expired"]["id"] == gone.pk
    assert Subscription.objects.get(pk=due.pk).status == Subscription.Status.PAST_DUE


def test_replay_from_the_admin_sends_the_event_again(admin_client, django_capture_on_commit_callbacks):
    with Receiver() as receiver:
        _endpoint(receiver, events=["payment.paid"])
        _paid_checkout(django_capture_on_commit_callbacks)
        delivery = Delivery.objects.get()
        changelist = reverse("admin:integrations_delivery_changelist")
        assert admin_client.get(changelist).status_code == 200
        assert admin_client.get(reverse("admin:integrations_delivery_change", args=[delivery.pk])).status_code == 200
        with django_capture_on_commit_callbacks(execute=True):
            admin_client.post(changelist, {"action": "replay", "_selected_action": [delivery.pk]})
        assert receiver.types() == ["payment.paid", "payment.paid"]
        assert len({body["id"] for _, body, _ in receiver.received}) == 1  # same event id: receivers dedupe
    assert DeliveryAttempt.objects.filter(delivery=delivery).count() == 2


def test_configure_webhook_endpoint_prints_the_secret(capsys):
    call_command("configure_webhook_endpoint", "https://crm.example.com/hook", "--events", "payment.paid,subscription.activated")
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.events == ["payment.paid", "subscription.activated"]
    assert endpoint.secret in capsys.readouterr().out
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("configure_webhook_endpoint", "https://crm.example.com/hook", "--events", "payment.bogus")


def test_the_endpoint_admin_shows_the_secret_once(admin_client):
    response = admin_client.post(
        reverse("admin:integrations_webhookendpoint_add"),
        {"url": "https://crm.example.com/hook", "events": ["payment.paid"], "is_active": "on"},
        follow=True,
    )
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.secret.encode() in response.content
    again = admin_client.get(reverse("admin:integrations_webhookendpoint_change", args=[endpoint.pk]))
    assert endpoint.secret.encode() not in again.content
