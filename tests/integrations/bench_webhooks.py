"""Bench: N events to a local receiver through the outbox; events/s and state change -> delivery delay."""
import statistics, sys, time
from datetime import datetime, timezone as dt_tz
# Run: DEBUG=true DATABASE_URL=... N=10000 python manage.py shell -c "exec(open('tests/integrations/bench_webhooks.py').read())"
# (a throwaway database: it deletes every outbox row first).
from django.db import transaction
from django.utils import timezone
from integrations import outbox
from integrations.models import Delivery, DeliveryAttempt, OutboxEvent, WebhookEndpoint
from tests.integrations.receiver import Receiver

N = int(__import__("os").environ.get("N", "10000"))
outbox._queue_delivery = lambda ids: None  # the worker is this loop
DeliveryAttempt.objects.all().delete(); Delivery.objects.all().delete(); OutboxEvent.objects.all().delete(); WebhookEndpoint.objects.all().delete()
with Receiver() as rx:
    ep = WebhookEndpoint.objects.create(url=rx.url); rx.secret = ep.secret
    t0 = time.time()
    with transaction.atomic():
        for start in range(0, N, 1000):
            outbox.emit_many("payment.paid", items=[({"n": i}, f"customer:{i}") for i in range(start, start + 1000)], now=timezone.now())
    t1 = time.time()
    while Delivery.objects.filter(status="pending").exists():
        outbox.deliver_due(limit=1000)
    t2 = time.time()
    created = {str(e.pk): e.created_at for e in OutboxEvent.objects.all()}
    # receiver-side arrival times are not kept by Receiver; use the attempt log's duration + order instead
    assert len(rx.received) == N and all(v for _, _, v in rx.received)
print(f"emit {N} events: {t1-t0:.2f}s; delivered {N} in {t2-t1:.2f}s = {N/(t2-t1):.0f} events/s (one worker)")
delays = sorted(rx.arrivals[k] - created[k].timestamp() for k in created)
q = statistics.quantiles(delays, n=100)
print(f"state change -> delivery: p50 {q[49]:.2f}s, p99 {q[98]:.2f}s (a burst of {N} committed at once)")
