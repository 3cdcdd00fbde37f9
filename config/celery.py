import os

from celery import Celery
from celery.signals import task_postrun, task_prerun
from django.db import close_old_connections

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
