"""
Shared fixtures and the rules of the test run.

- PostgreSQL when DATABASE_URL points at one, else SQLite; tests marked
  `postgres` skip on SQLite, saying why. Under CI=true both PostgreSQL and
  Redis are required: their absence fails the run instead of skipping.
"""

import os
import socket
from urllib.parse import urlparse

import pytest
from celery._state import _set_task_join_will_block  # no public way to clear it (see _celery_in_process)
from django.conf import settings
from django.db import connection

IS_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _using_postgres() -> bool:
    return settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


def _redis_reachable() -> bool:
    if not settings.REDIS_URL:
        return False
    parsed = urlparse(settings.REDIS_URL)
    try:
        socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 6379), timeout=1).close()
    except OSError:
        return False
    return True


def pytest_sessionstart(session):
    if not IS_CI:
        return
    problems = []
    if not _using_postgres():
        problems.append("DATABASE_URL must point at PostgreSQL under CI=true")
    if not _redis_reachable():
        problems.append("REDIS_URL must point at a reachable Redis under CI=true")
    if problems:
        pytest.exit("; ".join(problems), returncode=3)


def pytest_collection_modifyitems(config, items):
    skip_pg = pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL=postgres://... to run it")
    skip_redis = pytest.mark.skip(reason="needs Redis: set REDIS_URL=redis://... to run it")
    pg = _using_postgres()
    redis_ok = _redis_reachable()
    for item in items:
        if "postgres" in item.keywords and not pg:
            item.add_marker(skip_pg)
        if "redis" in item.keywords and not redis_ok:
            item.add_marker(skip_redis)


@pytest.fixture(autouse=True)
def _fast_and_isolated(settings, tmp_path):
    # Argon2 is slow by design; tests do not need it (one test checks it is configured).
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(autouse=True)
def _celery_in_process():
    """
    Tasks run in-process in tests, even with REDIS_URL set, so their effects
    (e-mails, syncs) are asserted and nothing is left queued in the shared Redis.
    The one test of the real broker turns this off for itself.
    """
    from config.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous
    # Celery keeps "a join would block" in one process-wide flag, set and restored around every eager
    # task: two threads running eager tasks at once (a live server's thread and the test's) can restore
    # it in the wrong order and leave it set, and a later test's .get() fails with "Never call
    # result.get() within a task!". Each test starts with it cleared.
    _set_task_join_will_block(False)


@pytest.fixture(autouse=True)
def _clear_cache():
    from django.core.cache import cache

    try:
        cache.clear()
    except Exception:  # noqa: BLE001 - tests that take Redis down clean up themselves
        pass
    yield


@pytest.fixture
def user(db):
    from tests.factories import UserFactory

    return UserFactory()


@pytest.fixture
def staff_user(db):
    """Staff, but without the finance permission."""
    from tests.factories import UserFactory

    return UserFactory(is_staff=True)


@pytest.fixture
def superuser(db):
    from tests.factories import UserFactory

    return UserFactory(is_staff=True, is_superuser=True)


@pytest.fixture
def admin_client(client, superuser):
    """A client logged in as a superuser (replaces pytest-django's, which makes its own user)."""
    client.force_login(superuser)
    return client


@pytest.fixture
def plan(db):
    from tests.factories import PlanFactory

    return PlanFactory()


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def is_postgres():
    return connection.vendor == "postgresql"


@pytest.fixture
def make_trouble(db):
    """
    `make_trouble(n)` leaves the site with n of each problem the admin index's health lists
    (config.site_health): failed postbacks, failing outbound endpoints, a failed last sync,
    review items waiting, and a money audit with n violations. Returns `now`.
    """
    from datetime import timedelta

    from django.utils import timezone

    from billing.ledger_models import MoneyAuditRun
    from billing.models import PaymentGateway, ReconciliationItem, WebhookEvent
    from integrations import outbox
    from integrations.models import WebhookEndpoint
    from tests.factories import GatewayFactory
    from whitelabel.models import SyncRun

    now = timezone.now()
    counter = iter(range(1_000_000))

    def make(n):
        gateway = PaymentGateway.objects.first() or GatewayFactory(kind=PaymentGateway.Kind.SANDBOX)
        for _ in range(n):
            i = next(counter)
            WebhookEvent.objects.create(
                provider="sandbox", event_id=f"evt-{i}", body="{}", outcome=WebhookEvent.Outcome.FAILED,
                received_at=now - timedelta(hours=1),
            )
            WebhookEndpoint.objects.create(url=f"https://hooks{i}.example.com/in", failing_since=now - timedelta(hours=3))
            ReconciliationItem.objects.create(
                gateway=gateway, transaction_id=f"tx-{i}", kind=ReconciliationItem.Kind.PARTIAL_PAYMENT, amount_cents=1000
            )
        # Every failing endpoint has a delivery waiting (what makes it "failing", not merely idle).
        outbox.emit("checkout.created", data={"n": n}, now=now - timedelta(hours=2))
        SyncRun.objects.create(status=SyncRun.Status.FAILED, finished_at=now, error="AccessDenied")
        MoneyAuditRun.objects.create(started_at=now, violation_count=n)
        return now

    return make
