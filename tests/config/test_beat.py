"""config/beat.py: the periodic tasks as migrate creates them."""

import pytest
from django_celery_beat.models import PeriodicTask

from config.beat import PERIODIC_TASKS, ensure_periodic_tasks

pytestmark = pytest.mark.django_db


def test_every_interval_task_expires_after_its_own_interval_so_an_outage_does_not_pile_up_runs():
    PeriodicTask.objects.all().delete()

    ensure_periodic_tasks()

    for spec in PERIODIC_TASKS:
        task = PeriodicTask.objects.get(name=spec["name"])
        assert task.expire_seconds == spec.get("every"), spec["name"]


def test_an_operators_edit_of_a_periodic_task_is_kept_by_the_next_migrate():
    ensure_periodic_tasks()
    retry = PeriodicTask.objects.get(task="billing.tasks.retry_failed_webhooks")
    PeriodicTask.objects.filter(pk=retry.pk).update(enabled=False, expire_seconds=None)

    ensure_periodic_tasks()

    retry.refresh_from_db()
    assert (retry.enabled, retry.expire_seconds) == (False, None)
