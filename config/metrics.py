"""
`GET /metrics` (contract §3): what the person on call graphs and alerts on, in Prometheus' text format.

Two kinds of numbers, each kept where it stays right with many processes:

- **Events counted where they happen** (requests and their latency, card refusals, open SSE
  streams): prometheus-client metrics in this process. Under gunicorn each worker is a process
  of its own; with `PROMETHEUS_MULTIPROC_DIR` set (an empty directory, wiped when the master
  starts: config/gunicorn.py) each process writes its values to files there and a scrape, served
  by whichever worker, adds them all up.
- **State** (checkouts by method, webhook events and the age of the oldest unprocessed, outbound
  deliveries, Celery queue lengths, the last sweep, sync and money audit): read from PostgreSQL
  and Redis at scrape time by `StateCollector`, so every worker answers the same and nothing is
  lost when a process dies.

No label carries personal data: views are route names, never paths; methods, statuses and
outcomes are from fixed sets.
"""

import hmac
import logging
import os
import re
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Min, Q
from django.http import HttpResponse, HttpResponseNotFound
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

logger = logging.getLogger(__name__)

if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # Any process of the site may count (a `manage.py migrate` before gunicorn starts, a worker):
    # prometheus-client opens its file in this directory when a metric is made, and fails without it.
    # (Read from the environment, as prometheus-client does: this module is imported with config/celery.py,
    # before the settings are.)
    Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)

# ---------------------------------------------------------------------------
# Counted where they happen (multiprocess-safe through PROMETHEUS_MULTIPROC_DIR)
# ---------------------------------------------------------------------------
REQUESTS = Counter(
    "creatorflix_http_requests", "HTTP requests answered, by route name, method and status.", ["view", "method", "status"]
)
REQUEST_SECONDS = Histogram(
    "creatorflix_http_request_duration_seconds",
    "Time to answer an HTTP request, by route name and method.",
    ["view", "method"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
CARD_REFUSALS = Counter("creatorflix_card_refusals", "Card charges the gateway refused, by refusal code.", ["code"])
# livesum: a dead worker's open streams are not counted.
SSE_STREAMS = Gauge("creatorflix_sse_streams_open", "Server-sent event streams open now.", multiprocess_mode="livesum")

_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
_CODE = re.compile(r"[^a-z0-9_]+")


def record_card_refusal(code: str) -> None:
    """Count a refused card charge. `code` is the gateway's refusal code (e.g. "insufficient_funds"),
    never its message or anything of the buyer's: it becomes a label, kept short and plain."""
    CARD_REFUSALS.labels(code=_CODE.sub("_", (code or "unknown").lower())[:32] or "unknown").inc()


@contextmanager
def open_sse_stream():
    """Around a server-sent event stream's life (the checkout events stream, when it exists): counted while open."""
    SSE_STREAMS.inc()
    try:
        yield
    finally:
        SSE_STREAMS.dec()


class RequestMetricsMiddleware:
    """First in MIDDLEWARE: counts every answer (including the ones middleware gives) and its time."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        # The route's name, never the path: ids and tokens live in paths and query strings.
        view = (match.view_name or match.route or "unnamed") if match else "unmatched"
        method = request.method if request.method in _METHODS else "OTHER"
        REQUEST_SECONDS.labels(view=view, method=method).observe(time.perf_counter() - started)
        REQUESTS.labels(view=view, method=method, status=str(response.status_code)).inc()
        return response


# ---------------------------------------------------------------------------
# Last runs of the periodic jobs: one reader per job, registered by name
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class LastRun:
    at: datetime
    ok: bool
    # Problems the run found (the money audit's violations); None when the job counts none.
    problems: int | None = None


LAST_RUN_READERS: dict[str, Callable[[], LastRun | None]] = {}


def register_last_run_reader(job: str, reader: Callable[[], LastRun | None]) -> None:
    """Where the last run of `job` is read from. An app with its own record of runs (a model
    with the time and the result) registers a reader here, replacing the default one."""
    LAST_RUN_READERS[job] = reader


# Tasks whose end (success or failure) is remembered in the cache by config/celery.py's signal handlers,
# for jobs with no row of their own; job name → task name.
TRACKED_TASKS = {
    "sweep": "billing.tasks.sweep_subscriptions",
    "reconcile": "billing.tasks.reconcile_payments",
    "money_audit": "billing.tasks.audit_money",
    "prune_outbox": "integrations.tasks.prune_outbox",
}
_TASK_JOBS = {task: job for job, task in TRACKED_TASKS.items()}


def _task_key(job: str) -> str:
    return f"ops:last-run:{job}"


def problems_in(result) -> int | None:
    """How many problems a task's return value reports: an int, or a dict's `violations` (a count or a list)."""
    if isinstance(result, bool):
        return None
    if isinstance(result, int):
        return result
    if isinstance(result, dict) and "violations" in result:
        violations = result["violations"]
        return len(violations) if isinstance(violations, list | tuple) else int(violations)
    return None


def remember_task_end(task_name: str, *, ok: bool, result=None, now: datetime | None = None) -> None:
    job = _TASK_JOBS.get(task_name)
    if job is None:
        return
    at = now or timezone.now()
    cache.set(_task_key(job), {"at": at.timestamp(), "ok": ok, "problems": problems_in(result) if ok else None}, None)


def _read_task_end(job: str) -> Callable[[], LastRun | None]:
    def read() -> LastRun | None:
        stored = cache.get(_task_key(job))
        if not stored:
            return None
        return LastRun(at=datetime.fromtimestamp(stored["at"], tz=UTC), ok=stored["ok"], problems=stored.get("problems"))

    return read


def _read_last_sync() -> LastRun | None:
    from whitelabel.models import SyncRun  # config must not import an app's models at its own import

    run = SyncRun.objects.exclude(status=SyncRun.Status.RUNNING).order_by("-started_at").first()
    if run is None:
        return None
    return LastRun(at=run.finished_at or run.started_at, ok=run.status == SyncRun.Status.SUCCEEDED)


for _job in TRACKED_TASKS:
    register_last_run_reader(_job, _read_task_end(_job))
register_last_run_reader("sync", _read_last_sync)


# ---------------------------------------------------------------------------
# State, read at scrape time
# ---------------------------------------------------------------------------
CELERY_QUEUES = ("celery",)


class StateCollector:
    """Reads PostgreSQL and Redis when scraped; a failing source drops its metrics, never the scrape."""

    def collect(self):
        up = GaugeMetricFamily("creatorflix_metrics_source_up", "1 when a scrape-time source answered, 0 when it failed.", labels=["source"])
        for name in ("checkouts", "webhook_events", "deliveries", "queues", "last_runs"):
            try:
                families = list(getattr(self, f"_{name}")())
            except Exception as exc:  # noqa: BLE001 - the rest of the scrape still answers
                logger.warning("metrics source failed", extra={"source": name, "error": type(exc).__name__})
                up.add_metric([name], 0)
                continue
            up.add_metric([name], 1)
            yield from families
        yield up

    def _checkouts(self):
        from billing.models import Checkout  # see _read_last_sync

        created = GaugeMetricFamily("creatorflix_checkouts_created", "Checkouts ever created, by payment method.", labels=["method"])
        paid = GaugeMetricFamily("creatorflix_checkouts_paid", "Checkouts ever paid, by payment method.", labels=["method"])
        rows = Checkout.objects.values("payment_method").annotate(
            created=Count("pk"), paid=Count("pk", filter=Q(paid_at__isnull=False))
        )
        for row in rows.order_by("payment_method"):
            created.add_metric([row["payment_method"]], row["created"])
            paid.add_metric([row["payment_method"]], row["paid"])
        yield created
        yield paid

    def _webhook_events(self):
        from billing.models import WebhookEvent  # see _read_last_sync

        Outcome = WebhookEvent.Outcome
        events = GaugeMetricFamily("creatorflix_webhook_events", "Payment webhook events stored, by provider and outcome.", labels=["provider", "outcome"])
        for row in WebhookEvent.objects.values("provider", "outcome").annotate(n=Count("pk")).order_by("provider", "outcome"):
            events.add_metric([row["provider"], row["outcome"]], row["n"])
        yield events
        oldest = WebhookEvent.objects.filter(outcome__in=[Outcome.RECEIVED, Outcome.FAILED]).aggregate(at=Min("received_at"))["at"]
        yield GaugeMetricFamily(
            "creatorflix_webhook_oldest_unprocessed_age_seconds",
            "Age of the oldest webhook event received or failed and not yet processed (0: none).",
            value=(timezone.now() - oldest).total_seconds() if oldest else 0,
        )

    def _deliveries(self):
        from integrations.models import Delivery, WebhookEndpoint  # see _read_last_sync

        now = timezone.now()
        counts = Delivery.objects.aggregate(
            pending=Count("pk", filter=Q(status=Delivery.Status.PENDING)),
            overdue=Count("pk", filter=Q(status=Delivery.Status.PENDING, next_attempt_at__lt=now)),
            failed=Count("pk", filter=Q(status=Delivery.Status.FAILED)),
        )
        deliveries = GaugeMetricFamily("creatorflix_outbound_deliveries", "Outbound webhook deliveries not delivered, by state.", labels=["state"])
        for state in ("pending", "overdue", "failed"):
            deliveries.add_metric([state], counts[state])
        yield deliveries
        yield GaugeMetricFamily(
            "creatorflix_outbound_endpoints_failing",
            "Outbound webhook endpoints currently failing.",
            value=WebhookEndpoint.objects.filter(failing_since__isnull=False).count(),
        )

    def _queues(self):
        if not settings.REDIS_URL:
            return
        from django_redis import get_redis_connection  # only with Redis configured

        # The broker and the cache share REDIS_URL: the cache's client reaches the queues.
        client = get_redis_connection("default")
        queued = GaugeMetricFamily("creatorflix_celery_queue_length", "Tasks waiting in a Celery queue.", labels=["queue"])
        for queue in CELERY_QUEUES:
            queued.add_metric([queue], client.llen(queue))
        yield queued
        yield GaugeMetricFamily(
            "creatorflix_celery_unacked", "Tasks taken by a worker and not yet acknowledged.", value=client.hlen("unacked")
        )

    def _last_runs(self):
        at = GaugeMetricFamily("creatorflix_last_run_timestamp_seconds", "When a periodic job last finished (Unix time).", labels=["job"])
        ok = GaugeMetricFamily("creatorflix_last_run_success", "1 when a periodic job's last run succeeded, 0 when it failed.", labels=["job"])
        problems = GaugeMetricFamily("creatorflix_last_run_problems", "Problems a job's last run found (the money audit's violations).", labels=["job"])
        for job, reader in sorted(LAST_RUN_READERS.items()):
            run = reader()
            if run is None:
                continue
            at.add_metric([job], run.at.timestamp())
            ok.add_metric([job], 1 if run.ok else 0)
            if run.problems is not None:
                problems.add_metric([job], run.problems)
        yield at
        yield ok
        yield problems


# ---------------------------------------------------------------------------
# The view
# ---------------------------------------------------------------------------
def _registry() -> CollectorRegistry:
    if not settings.PROMETHEUS_MULTIPROC_DIR:
        registry = CollectorRegistry()
        registry.register(_ThisProcess())
    else:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=settings.PROMETHEUS_MULTIPROC_DIR)
    registry.register(StateCollector())
    return registry


class _ThisProcess:
    """The counters of this process alone (no PROMETHEUS_MULTIPROC_DIR: one process, `make run`, tests)."""

    def collect(self):
        for collector in (REQUESTS, REQUEST_SECONDS, CARD_REFUSALS, SSE_STREAMS):
            yield from collector.collect()


@never_cache
@require_GET
def metrics(request):
    """Bearer METRICS_TOKEN; 404 when it is unset (the endpoint does not exist), 401 for a wrong one."""
    expected = settings.METRICS_TOKEN
    if not expected:
        return HttpResponseNotFound()
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {expected}".encode()):
        response = HttpResponse("unauthorized\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)
