"""
One id per request, on every log line it writes and on every log line of the Celery tasks it queues,
so one buyer's path can be followed through web and worker logs (and nginx's and gunicorn's access
logs, which print the same id).

- `RequestIdMiddleware` takes the id nginx set (`X-Request-ID`) when the site sits behind trusted
  proxies (`TRUSTED_PROXIES` > 0: the proxy overwrites whatever the client sent) and the value is
  a plain token; otherwise it makes one. It answers it in `X-Request-ID`.
- The id lives in a context variable: `RequestIdFilter` puts it on every log record.
- `before_task_publish` copies it into the task message's headers; `task_prerun` sets it in the
  worker for the task's duration, `task_postrun` clears it.
"""

import contextvars
import logging
import re
import uuid

from celery.signals import before_task_publish, task_postrun, task_prerun
from django.conf import settings

HEADER = "X-Request-ID"
# The Celery message header carrying the id (a name of our own, next to Celery's).
TASK_HEADER = "cf_request_id"
# nginx's $request_id is 32 hex characters; a load balancer's may be a uuid. Nothing else is believed.
_VALID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")

_current: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)


def current_request_id() -> str | None:
    return _current.get()


def new_request_id() -> str:
    return uuid.uuid4().hex


def _from_proxy(request) -> str | None:
    if settings.TRUSTED_PROXIES <= 0:
        return None
    given = request.headers.get(HEADER, "")
    return given if _VALID.match(given) else None


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = _from_proxy(request) or new_request_id()
        token = _current.set(request_id)
        try:
            request.request_id = request_id
            response = self.get_response(request)
        finally:
            _current.reset(token)
        response[HEADER] = request_id
        return response


class RequestIdFilter(logging.Filter):
    """Every log record gets `request_id` (absent outside a request or a task that carries one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = _current.get()
        if request_id is not None and not hasattr(record, "request_id"):
            record.request_id = request_id
        return True


@before_task_publish.connect
def _carry_request_id(headers=None, **kwargs):
    request_id = _current.get()
    if request_id is not None and headers is not None:
        headers.setdefault(TASK_HEADER, request_id)


@task_prerun.connect
def _adopt_request_id(task=None, **kwargs):
    # A task run in-process (eager, or without a broker) is already inside its caller's id.
    if task is None or task.request.is_eager:
        return
    request_id = getattr(task.request, TASK_HEADER, None)
    _current.set(request_id if request_id and _VALID.match(request_id) else None)


@task_postrun.connect
def _drop_request_id(task=None, **kwargs):
    if task is not None and not task.request.is_eager:
        _current.set(None)
