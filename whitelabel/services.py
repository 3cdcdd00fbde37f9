"""Writes the admin asks for on the staging tables (the sync itself lives in `whitelabel.sync`)."""

from __future__ import annotations

from dataclasses import dataclass

from celery.result import EagerResult
from django.db import transaction
from django.utils.translation import gettext as _

from config.tasks import enqueue
from whitelabel import s3
from whitelabel.models import SyncRun, WhitelabelCreator
from whitelabel.sync import disabled_message, sync_bucket_task


def hide_creators(*, creator_ids: list[int]) -> int:
    """Keep creators out of the catalog; the sync never changes a status back. Returns rows changed."""
    return (
        WhitelabelCreator.objects.filter(pk__in=creator_ids)
        .exclude(status=WhitelabelCreator.Status.HIDDEN)
        .update(status=WhitelabelCreator.Status.HIDDEN)
    )


def unhide_creators(*, creator_ids: list[int]) -> int:
    """Hidden creators go back to `new` (to be published again by the catalog)."""
    return WhitelabelCreator.objects.filter(pk__in=creator_ids, status=WhitelabelCreator.Status.HIDDEN).update(
        status=WhitelabelCreator.Status.NEW
    )


@dataclass
class SyncRequest:
    ok: bool
    message: str


def request_sync(*, prefixes: list[str] | None = None, trigger: str = SyncRun.Trigger.ADMIN) -> SyncRequest:
    """
    Queue `whitelabel.tasks.sync_bucket` (one task per creator prefix, or one for the whole bucket).

    Queued after commit, so a task never starts before the request's writes are visible.
    Without a broker (`make run`) tasks run in-process and their outcome is reported here.
    """
    if not s3.sync_enabled():
        return SyncRequest(ok=False, message=disabled_message())
    outcomes: list[dict] = []

    def queue_syncs():
        for prefix in prefixes or [""]:
            try:
                result = enqueue(sync_bucket_task, prefix=prefix, trigger=trigger)
            except Exception as exc:  # noqa: BLE001 - eager mode raises the sync's own failure here
                outcomes.append({"status": "failed", "message": _("Sync failed: %(error)s") % {"error": exc}})
                continue
            # No result backend is configured: only an in-process (eager) run has a result to show.
            value = result.result if isinstance(result, EagerResult) else None
            outcomes.append(value or {"status": "queued"})

    transaction.on_commit(queue_syncs)
    if not outcomes:  # inside an outer transaction: queued on commit
        return SyncRequest(ok=True, message=_("Sync queued; it will appear in the sync history."))
    if any(o["status"] == "failed" for o in outcomes):
        return SyncRequest(ok=False, message=" ".join(o["message"] for o in outcomes if o["status"] == "failed"))
    if all(o["status"] == "queued" for o in outcomes):
        return SyncRequest(
            ok=True,
            message=_("%(n)d sync task(s) queued; they will appear in the sync history.") % {"n": len(outcomes)},
        )
    return SyncRequest(ok=True, message=" ".join(o.get("message", "") for o in outcomes))
