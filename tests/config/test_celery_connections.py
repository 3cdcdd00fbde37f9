"""A Celery worker keeps its database connection between tasks, and drops a broken one (config/celery.py)."""

from types import SimpleNamespace

import pytest
from celery.fixups.django import DjangoWorkerFixup
from celery.signals import task_postrun, task_prerun
from django.db import connection

from config.celery import app

pytestmark = pytest.mark.django_db(transaction=True)

class _Task:
    def __init__(self, *, eager):
        self.request = SimpleNamespace(is_eager=eager)


A_WORKER_TASK = _Task(eager=False)


def _run_a_task(fixup):
    """What a worker does around a task: Celery's Django fixup, then the signals config/celery.py listens to."""
    fixup.on_task_prerun(sender=A_WORKER_TASK)
    task_prerun.send(sender=A_WORKER_TASK)
    connection.ensure_connection()
    task_postrun.send(sender=A_WORKER_TASK)
    fixup.on_task_postrun(sender=A_WORKER_TASK)


def test_the_connection_is_kept_across_tasks():
    fixup = DjangoWorkerFixup(app)
    connection.close()  # a fresh one: a connection older than CONN_MAX_AGE is rightly replaced
    connection.ensure_connection()
    opened = connection.connection

    for _ in range(5):
        _run_a_task(fixup)

    assert connection.connection is opened  # Celery's default would have reconnected 5 times


def test_a_broken_connection_is_replaced_before_the_next_task(settings):
    fixup = DjangoWorkerFixup(app)
    connection.close()
    connection.ensure_connection()
    opened = connection.connection
    connection.errors_occurred = True
    connection.connection.close()  # the server went away under the worker

    _run_a_task(fixup)

    assert connection.connection is not opened
    assert connection.is_usable()


@pytest.mark.django_db
def test_an_eager_task_leaves_its_callers_transaction_alone():
    from django.db import transaction

    from billing.models import Plan

    eager = _Task(eager=True)
    with transaction.atomic():
        Plan.objects.create(name="Mensal eager", price_cents=100, duration_days=30)
        task_prerun.send(sender=eager)
        task_postrun.send(sender=eager)
        assert Plan.objects.filter(name="Mensal eager").exists()  # same connection, same transaction
