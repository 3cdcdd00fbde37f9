"""A request's id (config/request_id.py): answered in X-Request-ID, on every log line of the request, and carried
into the Celery tasks it queues."""

import json
import logging
import time
import uuid

import pytest
from celery import shared_task
from celery.contrib.testing.worker import start_worker
from django.core.cache import cache
from django.http import JsonResponse
from django.urls import path

from config.celery import app
from config.logging import JsonFormatter
from config.request_id import RequestIdFilter, current_request_id
from config.tasks import enqueue

logger = logging.getLogger("tests.request_id")


@shared_task(name="tests.log_request_id")
def log_request_id(key):
    logger.info("task ran")
    cache.set(key, current_request_id(), timeout=60)


def _queue_a_task(request):
    logger.info("view ran")
    enqueue(log_request_id, key=request.GET["key"])
    return JsonResponse({"ok": True})


urlpatterns = [path("queue", _queue_a_task)]


class LogKeeper(logging.Handler):
    """Keeps the JSON lines as the site writes them: settings.LOGGING's formatter and request-id filter."""

    def __init__(self):
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.addFilter(RequestIdFilter())
        self.lines = []

    def emit(self, record):
        self.lines.append(json.loads(self.format(record)))

    def attach(self):
        """(Again, after a worker starts: it configures logging anew, config/celery.py.)"""
        root = logging.getLogger()
        root.addHandler(self)
        root.setLevel(logging.INFO)


@pytest.fixture
def log_lines():
    keeper = LogKeeper()
    previous = logging.getLogger().level
    keeper.attach()
    yield keeper
    logging.getLogger().removeHandler(keeper)
    logging.getLogger().setLevel(previous)


@pytest.mark.django_db
def test_every_answer_carries_a_fresh_request_id(client):
    first = client.get("/healthz")["X-Request-ID"]
    second = client.get("/healthz")["X-Request-ID"]

    assert len(first) == 32 and first != second


@pytest.mark.django_db
def test_an_incoming_id_is_believed_only_behind_trusted_proxies(client, settings):
    settings.TRUSTED_PROXIES = 0
    assert client.get("/healthz", HTTP_X_REQUEST_ID="abcdef0123456789")["X-Request-ID"] != "abcdef0123456789"

    settings.TRUSTED_PROXIES = 1
    assert client.get("/healthz", HTTP_X_REQUEST_ID="abcdef0123456789")["X-Request-ID"] == "abcdef0123456789"
    # Not a plain token: a fresh id instead (no log injection, no personal data).
    for forged in ("short", "a" * 65, "abc def 0123456789", "x\ny-0123456789", "maria@example.com.br"):
        assert client.get("/healthz", HTTP_X_REQUEST_ID=forged)["X-Request-ID"] != forged


@pytest.mark.django_db
@pytest.mark.urls("tests.config.test_request_id")
def test_log_lines_of_a_request_carry_its_id(client, log_lines):
    response = client.get("/queue", {"key": f"rid-{uuid.uuid4()}"})

    request_id = response["X-Request-ID"]
    view_lines = [line for line in log_lines.lines if line["msg"] == "view ran"]
    assert [line["request_id"] for line in view_lines] == [request_id]
    assert current_request_id() is None  # nothing leaks to what runs after the request


@pytest.mark.redis
@pytest.mark.django_db
@pytest.mark.urls("tests.config.test_request_id")
def test_a_task_queued_by_a_request_runs_under_the_request_id(client, settings, log_lines):
    """Web → Redis → a real worker: the task's log lines carry the id the request answered."""
    app.conf.task_always_eager = False  # (the suite's autouse fixture runs tasks in-process)
    key = f"rid-{uuid.uuid4()}"
    with start_worker(app, perform_ping_check=False, pool="solo", loglevel="WARNING"):
        log_lines.attach()
        response = client.get("/queue", {"key": key})
        deadline = time.monotonic() + 20
        while cache.get(key) is None and time.monotonic() < deadline:
            time.sleep(0.1)

    request_id = response["X-Request-ID"]
    assert cache.get(key) == request_id
    lines = log_lines.lines
    assert [line.get("request_id") for line in lines if line["msg"] == "task ran"] == [request_id]
    assert any(line.get("request_id") == request_id for line in lines if line["logger"] == "celery.app.trace")
