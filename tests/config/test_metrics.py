"""GET /metrics (contract §3, config/metrics.py): the token, the counted events, the state read at scrape time,
and the sums across processes (prometheus-client's multiprocess mode)."""

import os
import subprocess
import sys
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from billing.models import Checkout, WebhookEvent
from config import metrics
from config.metrics import LastRun, open_sse_stream, record_card_refusal, register_last_run_reader, remember_task_end
from tests.factories import CheckoutFactory
from whitelabel.models import SyncRun

TOKEN = "metrics-token-for-tests"


def scrape(client) -> dict:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


@pytest.fixture
def metrics_on(settings):
    settings.METRICS_TOKEN = TOKEN
    settings.PROMETHEUS_MULTIPROC_DIR = ""


@pytest.mark.django_db
def test_metrics_answers_404_when_no_token_is_configured(client, settings):
    settings.METRICS_TOKEN = ""

    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer anything").status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize("header", [None, "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x"])
def test_metrics_answers_401_to_a_missing_or_wrong_token(client, metrics_on, header):
    kwargs = {"HTTP_AUTHORIZATION": header} if header else {}

    assert client.get("/metrics", **kwargs).status_code == 401


@pytest.mark.django_db
def test_requests_are_counted_by_route_name_and_status_never_by_path(client, metrics_on):
    # given
    checkout = CheckoutFactory()
    before = scrape(client)
    # when
    client.get(f"/api/checkout/{checkout.public_id}")
    client.get("/no-such-page-123")
    samples = scrape(client)

    # then
    name = "creatorflix_http_requests_total"
    poll = [key for key in samples if key[0] == name and str(checkout.public_id) in str(key)]
    assert poll == []
    poll_labels = {"view": "api-checkout-detail", "method": "GET", "status": "200"}
    assert (value(samples, name, **poll_labels) or 0) - (value(before, name, **poll_labels) or 0) == 1
    assert value(samples, name, view="unmatched", method="GET", status="404") >= 1
    assert value(samples, "creatorflix_http_request_duration_seconds_count", view="api-checkout-detail", method="GET") >= 1
    assert not any("no-such-page" in str(key) for key in samples)


@pytest.mark.django_db
def test_state_is_read_from_the_database_at_scrape_time(client, metrics_on):
    # given
    now = timezone.now()
    CheckoutFactory(payment_method=Checkout.Method.PIX)
    CheckoutFactory(payment_method=Checkout.Method.PIX, status=Checkout.Status.PAID, paid_at=now)
    CheckoutFactory(payment_method=Checkout.Method.CARD, status=Checkout.Status.PAID, paid_at=now)
    WebhookEvent.objects.create(provider="junglepay", event_id="a", body="{}", outcome="processed")
    WebhookEvent.objects.create(provider="junglepay", event_id="b", body="{}", outcome="failed", received_at=now - timedelta(minutes=7))
    WebhookEvent.objects.create(provider="junglepay", event_id="c", body="{}", received_at=now - timedelta(minutes=2))

    # when
    samples = scrape(client)

    # then
    assert value(samples, "creatorflix_checkouts_created", method="pix") == 2
    assert value(samples, "creatorflix_checkouts_paid", method="pix") == 1
    assert value(samples, "creatorflix_checkouts_paid", method="card") == 1
    assert value(samples, "creatorflix_webhook_events", provider="junglepay", outcome="failed") == 1
    assert value(samples, "creatorflix_webhook_events", provider="junglepay", outcome="processed") == 1
    assert 7 * 60 <= value(samples, "creatorflix_webhook_oldest_unprocessed_age_seconds") < 8 * 60
    assert value(samples, "creatorflix_outbound_deliveries", state="pending") == 0
    assert all(value(samples, "creatorflix_metrics_source_up", source=s) == 1 for s in ("checkouts", "webhook_events", "deliveries", "last_runs"))
    # No personal data anywhere in the answer.
    text = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()
    assert "@example.com" not in text and "52998224725" not in text


@pytest.mark.django_db
def test_card_refusals_are_counted_by_a_plain_code(client, metrics_on):
    before = value(scrape(client), "creatorflix_card_refusals_total", code="insufficient_funds") or 0

    record_card_refusal("Insufficient-Funds")

    assert value(scrape(client), "creatorflix_card_refusals_total", code="insufficient_funds") == before + 1


@pytest.mark.django_db
def test_open_sse_streams_are_counted_while_open(client, metrics_on):
    before = value(scrape(client), "creatorflix_sse_streams_open")

    with open_sse_stream(), open_sse_stream():
        during = value(scrape(client), "creatorflix_sse_streams_open")

    assert during == before + 2
    assert value(scrape(client), "creatorflix_sse_streams_open") == before


@pytest.mark.django_db
def test_last_sweep_sync_and_money_audit_are_reported_with_their_result(client, metrics_on, monkeypatch):
    # given
    monkeypatch.setattr(metrics, "LAST_RUN_READERS", dict(metrics.LAST_RUN_READERS))
    now = timezone.now()
    cache.delete_many(["ops:last-run:sweep", "ops:last-run:money_audit"])
    remember_task_end("billing.tasks.sweep_subscriptions", ok=True, result={"expired": 3}, now=now)
    remember_task_end("billing.tasks.audit_money", ok=True, result={"violations": 2}, now=now)
    SyncRun.objects.create(status=SyncRun.Status.FAILED, finished_at=now)

    # when
    samples = scrape(client)

    # then
    assert value(samples, "creatorflix_last_run_timestamp_seconds", job="sweep") == pytest.approx(now.timestamp())
    assert value(samples, "creatorflix_last_run_success", job="sweep") == 1
    assert value(samples, "creatorflix_last_run_success", job="sync") == 0
    assert value(samples, "creatorflix_last_run_problems", job="money_audit") == 2


@pytest.mark.django_db
def test_a_registered_reader_replaces_the_default_one(client, metrics_on, monkeypatch):
    monkeypatch.setattr(metrics, "LAST_RUN_READERS", dict(metrics.LAST_RUN_READERS))
    register_last_run_reader("money_audit", lambda: LastRun(at=timezone.now(), ok=True, problems=0))

    samples = scrape(client)

    assert value(samples, "creatorflix_last_run_problems", job="money_audit") == 0


@pytest.mark.django_db
def test_a_failing_source_drops_its_metrics_not_the_scrape(client, metrics_on, monkeypatch):
    def broken(self):
        raise ConnectionError("redis gone")

    monkeypatch.setattr(metrics.StateCollector, "_deliveries", broken)

    samples = scrape(client)

    assert value(samples, "creatorflix_metrics_source_up", source="deliveries") == 0
    assert value(samples, "creatorflix_metrics_source_up", source="checkouts") == 1


@pytest.mark.redis
@pytest.mark.django_db
def test_celery_queue_lengths_are_read_from_redis(client, metrics_on, settings):
    from django_redis import get_redis_connection

    redis = get_redis_connection("default")
    redis.delete("celery")
    redis.rpush("celery", "a", "b", "c")
    try:
        samples = scrape(client)
    finally:
        redis.delete("celery")

    assert value(samples, "creatorflix_celery_queue_length", queue="celery") == 3


_CHILD = """
import django, os
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
django.setup()
from config.metrics import REQUESTS, record_card_refusal
REQUESTS.labels(view="catalog:home", method="GET", status="200").inc(5)
record_card_refusal("do_not_honor")
"""


@pytest.mark.django_db
def test_counters_of_every_worker_process_are_summed_in_multiprocess_mode(client, settings, tmp_path):
    # given: two worker processes counting into the shared directory, as gunicorn's do
    settings.METRICS_TOKEN = TOKEN
    settings.PROMETHEUS_MULTIPROC_DIR = str(tmp_path)
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "DEBUG": "true"}
    for _ in range(2):
        subprocess.run([sys.executable, "-c", _CHILD], env=env, check=True, timeout=60)

    # when: any one process answers the scrape
    samples = scrape(client)

    # then
    assert value(samples, "creatorflix_http_requests_total", view="catalog:home", method="GET", status="200") == 10
    assert value(samples, "creatorflix_card_refusals_total", code="do_not_honor") == 2
    assert value(samples, "creatorflix_checkouts_created", method="pix") is None  # state still read (none here)
