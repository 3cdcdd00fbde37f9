"""One sync at a time: the lock, and the `SyncRun` row recorded while holding it."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from whitelabel.models import SyncRun
from whitelabel.sync.results import SyncAlreadyRunning

# pg_advisory_lock key: "WLSY" as an int. Any constant works as long as only this sync uses it.
ADVISORY_LOCK_ID = 0x574C5359


def _already_running() -> SyncAlreadyRunning:
    return SyncAlreadyRunning(_("Another white-label sync is running; this one exits."))


@contextmanager
def exclusive_run(*, prefix: str, trigger: str):
    """
    Yield a new `running` SyncRun while holding the sync lock, or raise SyncAlreadyRunning.

    PostgreSQL: a session-level advisory lock on the caller's connection (the thread that
    called `sync_bucket`); the sync's writer thread, on its own connection, does not need it.
    """
    now = timezone.now()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [ADVISORY_LOCK_ID])
            if not cursor.fetchone()[0]:
                raise _already_running()
        try:
            # We hold the lock, so a `running` row is the leftover of a process that died mid-sync.
            SyncRun.objects.filter(status=SyncRun.Status.RUNNING).update(
                status=SyncRun.Status.FAILED, finished_at=now, error="Interrupted: the process running it stopped."
            )
            yield SyncRun.objects.create(prefix=prefix, trigger=trigger)
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [ADVISORY_LOCK_ID])
        return

    # Elsewhere the lock is the row: a partial unique constraint allows one `running` run.
    stale = now - timedelta(seconds=settings.WHITELABEL_SYNC_STALE_SECONDS)
    SyncRun.objects.filter(status=SyncRun.Status.RUNNING, started_at__lt=stale).update(
        status=SyncRun.Status.FAILED, finished_at=now, error="Interrupted: no progress for too long."
    )
    try:
        with transaction.atomic():
            run = SyncRun.objects.create(prefix=prefix, trigger=trigger)
    except IntegrityError:
        raise _already_running() from None
    yield run
