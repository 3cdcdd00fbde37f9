"""
Mirror the white-label bucket into the staging tables (contract §7).

    sync_bucket(prefix=..., dry_run=..., trigger=...) -> SyncResult

1. Take the lock (`lock`: PostgreSQL advisory lock, else the "one running SyncRun" unique
   constraint) and record a `SyncRun`; a second sync says so and exits.
2. List the bucket (`listing`: boto3's paginator, 1,000 keys a page) in a background thread
   that stays two pages ahead. Meanwhile, preload the stored creators and posts (`stored`).
3. Per page, plan (`planning`): parse the keys and compare with what is stored (one SELECT of
   the stored media of the page's stored posts), keeping only the new or changed rows. Hand the
   plan to the writer (`writes`, chosen once: PostgreSQL, portable or dry run) through the
   `pipeline`: on PostgreSQL the writer has its own thread and connection and writes page N while
   page N+1 is listed and planned. One transaction a page; its counts are added once it commits.
4. Only after the listing completed and every page is committed: delete the creators, posts and
   media that were not seen, fix profile images that disappeared, ANALYZE after a big load, and
   recompute aggregates (`aggregates`) for what changed. Any exception before that marks the run
   failed and deletes nothing.
"""

from __future__ import annotations

import logging
import time
from contextlib import nullcontext

from celery import shared_task
from django.db import transaction
from django.utils import timezone

import whitelabel.sync.stored as stored  # the submodule, not the package this file is
from whitelabel import s3
from whitelabel.models import SyncRun, WhitelabelCreator, WhitelabelMedia, WhitelabelPost
from whitelabel.sync.listing import list_pages, prefetch, short_gil_switch_interval
from whitelabel.sync.lock import exclusive_run
from whitelabel.sync.pipeline import Committed, open_pipeline
from whitelabel.sync.planning import Planner
from whitelabel.sync.results import (
    ProgressCallback,
    SyncAlreadyRunning,
    SyncCounts,
    SyncDisabled,
    SyncResult,
    disabled_message,
)
from whitelabel.sync.writes import Writer, writer_for

__all__ = ["SyncAlreadyRunning", "SyncCounts", "SyncDisabled", "SyncResult", "disabled_message", "sync_bucket", "sync_bucket_task"]

logger = logging.getLogger(__name__)
# The admin's history shows a running sync's progress: a few writes a minute at most.
PROGRESS_SAVE_SECONDS = 5


def sync_bucket(
    *,
    prefix: str = "",
    dry_run: bool = False,
    trigger: str = SyncRun.Trigger.COMMAND,
    progress: ProgressCallback | None = None,
) -> SyncResult:
    """
    Sync the bucket (or one creator's folder when `prefix` names it) into the staging tables.

    Raises SyncDisabled when WHITELABEL_BUCKET is unset and SyncAlreadyRunning when another
    sync holds the lock. A failure while listing or writing is recorded on the SyncRun (status
    `failed`, error text), deletes nothing, and is re-raised. A dry run lists and compares the
    same way, takes no lock, records no run and writes nothing.
    """
    bucket = s3.bucket_name()
    if not bucket:
        raise SyncDisabled(disabled_message())
    creator = prefix.strip("/")
    list_prefix = s3.bucket_prefix() + (f"{creator}/" if creator else "")
    client = s3.get_client()
    writer = writer_for(dry_run=dry_run)
    session = nullcontext(None) if dry_run else exclusive_run(prefix=creator, trigger=trigger)
    with session as run:
        sync = _Sync(scope=creator, writer=writer, run=run, progress=progress)
        try:
            with (
                short_gil_switch_interval(),
                prefetch(list_pages(client=client, bucket=bucket, prefix=list_prefix)) as pages,
            ):
                sync.list_and_write(pages)
            sync.finish()
        except BaseException as exc:
            sync.record_failure(exc)
            raise
    return SyncResult(counts=sync.counts, seconds=sync.elapsed(), dry_run=dry_run, run=run)


class _Sync:
    def __init__(self, *, scope: str, writer: Writer, run: SyncRun | None, progress: ProgressCallback | None):
        self.scope = scope
        self.writer = writer
        self.run = run  # None in a dry run
        self.progress = progress
        self.committed = Committed()
        self.counts = self.committed.counts  # replaced by the final counts once the run succeeded
        self.now = timezone.now()
        self.started = time.monotonic()
        self.last_progress_save = self.started
        self.planner: Planner | None = None

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def list_and_write(self, pages) -> None:
        with open_pipeline(self.writer, self.committed) as pipeline:
            base_url = s3.public_base_url()
            self.planner = Planner(
                stored.preload(scope=self.scope, base_url=base_url),
                scope=self.scope,
                bucket_prefix=s3.bucket_prefix(),
                base_url=base_url,
                now=self.now,
                read_media=stored.media_reader(),
            )
            for contents in pages:
                pipeline.submit(self.planner.plan_page(contents))
                self.report_progress()
            pipeline.drain()

    def report_progress(self) -> None:
        counts = None
        if self.progress:
            counts = self.committed.counts_now()
            self.progress(counts, self.elapsed())
        if self.run is not None and time.monotonic() - self.last_progress_save >= PROGRESS_SAVE_SECONDS:
            counts = counts or self.committed.counts_now()
            SyncRun.objects.filter(pk=self.run.pk).update(**counts.as_run_fields())
            self.last_progress_save = time.monotonic()

    def finish(self) -> None:
        """Profile images, orphans, aggregates, in one transaction: only after every page is committed."""
        planner, writer, committed = self.planner, self.writer, self.committed
        counts = committed.counts.copy()
        with transaction.atomic():
            # Profile images that disappeared from the bucket (never cleared mid-listing).
            final = planner.final_creators()
            written = writer.write_pages([final])
            counts.add(final.counts)
            media, posts, creators = stored.orphans(
                scope=self.scope,
                seen_media=planner.seen_media_ids | committed.seen_media_ids,
                seen_posts=planner.seen_post_ids | committed.seen_post_ids,
                seen_creators=planner.seen_creator_ids | committed.seen_creator_ids | set(written.creator_ids),
            )
            deleted = writer.delete_orphans(media=stored.ids(media), posts=stored.ids(posts), creators=creators)
            counts.media_deleted += deleted.get(WhitelabelMedia._meta.label, 0)
            counts.posts_deleted += deleted.get(WhitelabelPost._meta.label, 0)
            counts.creators_deleted += deleted.get(WhitelabelCreator._meta.label, 0)

            deleted_posts = set(stored.ids(posts))
            changed_posts = committed.changed_post_ids | {p for _pk, p in media if p not in deleted_posts}
            changed_creators = committed.changed_creator_ids | {c for _pk, c in posts}
            writer.analyze(counts.media_created + counts.posts_created + counts.creators_created)
            writer.refresh_aggregates(
                post_ids=changed_posts - deleted_posts, creator_ids=changed_creators - set(creators), now=self.now
            )
            if self.run is not None:
                self.run.status = SyncRun.Status.SUCCEEDED
                self.run.finished_at = timezone.now()
                for name, value in counts.as_run_fields().items():
                    setattr(self.run, name, value)
                self.run.save()
        self.counts = counts

    def record_failure(self, exc: BaseException) -> None:
        """The run failed: what committed pages wrote stays (nothing is deleted), with its figures right."""
        if self.run is None:
            return
        logger.exception("white-label sync %s failed", self.run.pk)
        committed = self.committed
        try:
            self.writer.refresh_aggregates(
                post_ids=committed.changed_post_ids, creator_ids=committed.changed_creator_ids, now=self.now
            )
        except Exception:  # the database may be what failed
            logger.exception("white-label sync %s: aggregates after failure failed too", self.run.pk)
        try:
            SyncRun.objects.filter(pk=self.run.pk).update(
                status=SyncRun.Status.FAILED,
                finished_at=timezone.now(),
                error=f"{type(exc).__name__}: {exc}"[:10000],
                **committed.counts_now().as_run_fields(),
            )
        except Exception:
            logger.exception("white-label sync %s: could not record the failure", self.run.pk)


# The Celery door (whitelabel/tasks.py re-exports it for autodiscovery; whitelabel.services queues it).
@shared_task(name="whitelabel.tasks.sync_bucket", ignore_result=True)
def sync_bucket_task(prefix: str = "", trigger: str = SyncRun.Trigger.TASK) -> dict:
    """
    Scheduled every 15 minutes by beat, and queued by the admin's "sync now".

    Not retried: a failed run is recorded in the history and the next scheduled run
    starts over, which is the retry. A disabled or already running sync is not an error.
    """
    try:
        result = sync_bucket(prefix=prefix, trigger=trigger)
    except SyncDisabled as exc:
        logger.info("%s", exc)
        return {"status": "disabled", "message": str(exc)}
    except SyncAlreadyRunning as exc:
        logger.info("%s", exc)
        return {"status": "already_running", "message": str(exc)}
    logger.info("%s", result.summary())
    return {"status": "succeeded", "run_id": result.run.pk, "message": result.summary()}
