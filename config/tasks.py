"""Queueing Celery tasks so that a broker outage delays work but never loses it."""

import logging

from kombu.exceptions import OperationalError as BrokerUnavailable

logger = logging.getLogger(__name__)

# A web request should not hang on a dead broker: two quick retries, then fall back.
_PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}


def enqueue(task, /, **kwargs):
    """
    Queue `task` with keyword arguments. When the broker (Redis) cannot be
    reached, run the task here, in-process, instead: slower for this one
    request, but the work is done and nothing is lost.
    """
    try:
        return task.apply_async(kwargs=kwargs, retry=True, retry_policy=_PUBLISH_RETRY)
    except BrokerUnavailable as exc:
        logger.warning("broker unreachable; running the task in-process", extra={"task": task.name, "error": str(exc)[:200]})
        return task.apply(kwargs=kwargs)
