"""Celery doors to the white-label sync (contract §6); the work lives in `whitelabel.sync`."""

import logging

from celery import shared_task

from whitelabel.models import SyncRun
from whitelabel.sync import SyncAlreadyRunning, SyncDisabled
from whitelabel.sync import sync_bucket as run_sync

logger = logging.getLogger(__name__)


@shared_task(name="whitelabel.tasks.sync_bucket", ignore_result=True)
def sync_bucket(prefix: str = "", trigger: str = SyncRun.Trigger.TASK) -> dict:
    """
    Scheduled every 15 minutes by beat, and queued by the admin's "sync now".

    Not retried: a failed run is recorded in the history and the next scheduled run
    starts over, which is the retry. A disabled or already running sync is not an error.
    """
    try:
        result = run_sync(prefix=prefix, trigger=trigger)
    except SyncDisabled as exc:
        logger.info("%s", exc)
        return {"status": "disabled", "message": str(exc)}
    except SyncAlreadyRunning as exc:
        logger.info("%s", exc)
        return {"status": "already_running", "message": str(exc)}
    logger.info("%s", result.summary())
    return {"status": "succeeded", "run_id": result.run.pk, "message": result.summary()}
