"""
Pages go from the planner to the writer through a pipeline: sequential (the writer runs in the
caller's thread) or pipelined (the writer runs on its own thread and database connection, fed by
a bounded queue, so writing page N overlaps listing and planning page N+1). `open_pipeline`
chooses once.

What the writer committed is kept in `Committed`: a page's counts and ids are added only after
its transaction commits, so a page whose write fails is never counted.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from typing import Self

from django.db import connection

from whitelabel.sync.planning import PagePlan
from whitelabel.sync.results import SyncCounts
from whitelabel.sync.writes import Writer, Written

# Plans waiting for the writer: enough to ride out a slow commit, few enough to bound memory.
QUEUE_DEPTH = 4
# A writer that fell behind writes the plans waiting for it in one transaction: one commit
# (a WAL flush and two round trips) for up to this many pages.
BATCH_PAGES = 4
_STOP = object()


@dataclass
class Committed:
    """Counts and ids of the committed pages (written by the writer's thread, read by the caller's)."""

    counts: SyncCounts = field(default_factory=SyncCounts)
    changed_post_ids: set[int] = field(default_factory=set)
    changed_creator_ids: set[int] = field(default_factory=set)
    # Rows this run wrote (stored rows seen are the planner's): never orphans.
    seen_creator_ids: set[int] = field(default_factory=set)
    seen_post_ids: set[int] = field(default_factory=set)
    seen_media_ids: set[int] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def apply(self, plans: list[PagePlan], written: Written) -> None:
        """`plans` were committed (in one transaction), writing `written`."""
        with self.lock:
            for plan in plans:
                self.counts.add(plan.counts)
                self.changed_post_ids |= plan.changed_post_ids
            self.changed_post_ids.update(post_id for _pk, post_id in written.media)
            self.changed_creator_ids.update(creator_id for _pk, creator_id in written.posts)
            self.seen_creator_ids.update(written.creator_ids)
            self.seen_post_ids.update(pk for pk, _creator_id in written.posts)
            self.seen_media_ids.update(pk for pk, _post_id in written.media)

    def counts_now(self) -> SyncCounts:
        with self.lock:
            return self.counts.copy()


class Sequential:
    """Each page written in the caller's thread before the next one is planned."""

    def __init__(self, writer: Writer, committed: Committed):
        self.writer, self.committed = writer, committed

    def __enter__(self) -> Self:
        self.writer.prepare()
        return self

    def submit(self, plan: PagePlan) -> None:
        self.committed.apply([plan], self.writer.write_pages([plan]))

    def drain(self) -> None:
        pass

    def __exit__(self, *exc_info) -> None:
        pass


class Pipelined:
    """
    The writer on a thread of its own: Django gives it its own connection, closed when it ends.

    - Plans are written in order, one transaction each, or, when the writer fell behind, the
      plans already waiting (up to BATCH_PAGES) in one transaction; each plan's counts are added
      once its transaction committed.
    - A write that fails stops the writer; the caller gets its exception at its next `submit`
      (or at `drain`), so the listing stops too. The failed transaction's plans and those queued
      behind it are dropped, not counted.
    - Leaving the `with` block on any other exception (a listing that failed) lets the writer
      finish the plans already handed to it, as a sequential sync would have written them, then
      joins it: no thread or connection outlives the sync.
    - When the caller's connection logs queries (DEBUG, CaptureQueriesContext), so does the
      writer's, and its queries are added to the caller's log once it has stopped.
    """

    def __init__(self, writer: Writer, committed: Committed, depth: int = QUEUE_DEPTH):
        self.writer, self.committed = writer, committed
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._log_queries = connection.queries_logged
        self._queries: list[dict] = []
        self._thread = threading.Thread(target=self._work, name="whitelabel-write", daemon=True)
        self._stopped = False

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def _work(self) -> None:
        try:
            connection.force_debug_cursor = self._log_queries
            self.writer.prepare()
            stop = False
            while not stop:
                batch = [self._queue.get()]
                while batch[-1] is not _STOP and len(batch) < BATCH_PAGES and not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                if batch[-1] is _STOP:
                    stop = True
                    batch.pop()
                if batch:
                    self.committed.apply(batch, self.writer.write_pages(batch))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            self._error = exc
        finally:
            if self._log_queries:
                self._queries = list(connection.queries_log)
            connection.close()

    def _put(self, item) -> None:
        # A writer that failed reads no more: never wait on a full queue for it.
        while self._thread.is_alive():
            try:
                self._queue.put(item, timeout=0.05)
                return
            except queue.Full:
                continue

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    def submit(self, plan: PagePlan) -> None:
        self._raise_if_failed()
        self._put(plan)
        self._raise_if_failed()

    def _stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._put(_STOP)
        self._thread.join()
        if self._log_queries:
            connection.queries_log.extend(self._queries)

    def drain(self) -> None:
        """Wait until every plan is committed; raise the writer's error, if any."""
        self._stop()
        self._raise_if_failed()

    def __exit__(self, *exc_info) -> None:
        self._stop()


def open_pipeline(writer: Writer, committed: Committed) -> Sequential | Pipelined:
    """
    Pipelined when the writer is worth a thread (PostgreSQL) and the caller is not inside a
    transaction: a second connection would not see that transaction's rows (a test's, say)
    and could wait on its locks forever. Otherwise sequential, in the caller's connection.
    """
    if writer.pipelined and not connection.in_atomic_block:
        return Pipelined(writer, committed)
    return Sequential(writer, committed)
