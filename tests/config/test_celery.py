import pytest
from celery import shared_task

from config.celery import app


@shared_task(name="tests.add")
def add(x, y):
    return x + y


@shared_task(name="tests.remember")
def remember(key, value):
    from django.core.cache import cache

    cache.set(key, value, timeout=60)


def test_tasks_run_in_process_without_redis(settings):
    from django.conf import settings as live

    if not live.REDIS_URL:
        assert live.CELERY_TASK_ALWAYS_EAGER  # no broker: the settings choose in-process
    assert add.delay(2, 3).get(timeout=5) == 5


@pytest.mark.redis
def test_tasks_go_through_redis_when_redis_url_is_set(settings):
    """A real worker consumes the task from the Redis broker; it writes its answer to the (Redis) cache."""
    import time
    import uuid

    from celery.contrib.testing.worker import start_worker
    from django.core.cache import cache

    assert app.conf.broker_url.startswith("redis://")
    assert not settings.CELERY_TASK_ALWAYS_EAGER  # what the settings give with REDIS_URL
    app.conf.task_always_eager = False  # (the suite's autouse fixture runs tasks in-process)
    key = f"celery-test-{uuid.uuid4()}"
    with start_worker(app, perform_ping_check=False, pool="solo", loglevel="WARNING"):
        remember.delay(key, 42)
        deadline = time.monotonic() + 20
        while cache.get(key) is None and time.monotonic() < deadline:
            time.sleep(0.1)

    assert cache.get(key) == 42


@pytest.mark.django_db
def test_periodic_tasks_exist_after_migrate():
    from django_celery_beat.models import PeriodicTask

    tasks = set(PeriodicTask.objects.values_list("task", flat=True))

    assert {"whitelabel.tasks.sync_bucket", "billing.tasks.sweep_subscriptions"} <= tasks
