import logging.config
import os

from celery import Celery
from celery.signals import setup_logging, task_failure, task_postrun, task_prerun, task_success
from django.conf import settings
from django.db import close_old_connections

import config.request_id  # noqa: F401 - connects the signals that carry a request's id into its tasks
from config.metrics import remember_task_end

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("creatorflix")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def _database_connection_as_for_a_request(sender=None, **kwargs):
    """A worker's task, like a request, starts and ends with a usable connection: one that is
    broken or older than CONN_MAX_AGE is closed (and reopened when needed), a good one is kept.
    Not for a task run in-process (eager, or `enqueue` without a broker): that one runs inside
    its caller's request or transaction, whose connection is not the task's to close."""
    if sender is not None and not getattr(sender.request, "is_eager", False):
        close_old_connections()


@task_success.connect
def _remember_success(sender=None, result=None, **kwargs):
    """The end of a periodic job with no row of its own (the sweep), for /metrics (config/metrics.py)."""
    remember_task_end(sender.name, ok=True, result=result)


@task_failure.connect
def _remember_failure(sender=None, **kwargs):
    remember_task_end(sender.name, ok=False)


@setup_logging.connect
def _logging_as_the_site_logs(**kwargs):
    """Workers and beat log like the web: JSON lines on stdout, secrets redacted, each line of a task
    queued by a request carrying that request's id (config/request_id.py). Connected, this signal
    stops Celery from replacing the root logger's handlers with its own plain-text ones."""
    logging.config.dictConfig(settings.LOGGING)
