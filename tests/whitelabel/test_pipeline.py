"""
The pipelined sync (PostgreSQL, outside any transaction): the writer on its own thread and
connection writes the same rows as the sequential sync, counts only what it committed, and
neither a writer failure nor a listing failure deletes anything or leaves a thread behind.

These tests commit (`transaction=True`): a test's transaction would switch the pipeline off
(`open_pipeline`), since a second connection cannot see its rows.
"""

import threading
import time

import pytest
from botocore.exceptions import EndpointConnectionError
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

import whitelabel.sync
from whitelabel.models import SyncRun, WhitelabelCreator, WhitelabelMedia, WhitelabelPost
from whitelabel.sync import pipeline, sync_bucket
from whitelabel.sync.writes import PostgresWriter

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def pipelines(monkeypatch):
    """The kinds of pipeline the syncs of a test used, in order."""
    used = []
    real = whitelabel.sync.open_pipeline

    def spy(writer, committed):
        chosen = real(writer, committed)
        used.append(type(chosen))
        return chosen

    monkeypatch.setattr(whitelabel.sync, "open_pipeline", spy)
    return used


def writer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "whitelabel-write"]


def backends() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        return cursor.fetchone()[0]


def assert_backends_back_to(expected: int) -> None:
    # A closed connection's backend exits a moment after the client hung up.
    deadline = time.monotonic() + 5
    while backends() > expected and time.monotonic() < deadline:
        time.sleep(0.05)
    assert backends() == expected


def stored_state() -> tuple:
    """Every row by its natural key (ids differ between two runs)."""
    creators = sorted(
        WhitelabelCreator.objects.values_list(
            "folder_name", "slug", "status", "thumbnail_key", "thumbnail_url", "icon_key", "banner_url", "post_count"
        )
    )
    posts = sorted(
        (creator, folder, title, count, sorted(summary.items()))
        for creator, folder, title, count, summary in WhitelabelPost.objects.values_list(
            "creator__folder_name", "folder_name", "title", "media_count", "media_summary"
        )
    )
    media = sorted(
        WhitelabelMedia.objects.values_list(
            "s3_key", "post__creator__folder_name", "post__folder_name", "url", "type", "size", "etag", "sort_key"
        )
    )
    return creators, posts, media


def run_counts(result) -> dict:
    fields = result.counts.as_run_fields()
    assert result.run.status == SyncRun.Status.SUCCEEDED
    assert {name: getattr(result.run, name) for name in fields} == fields
    return fields


def scenario(bucket, settings, *, sequential: bool) -> list:
    """A first sync over many pages, then a re-sync after changes; (counts, rows) after each."""

    def sync():
        if sequential:  # inside a transaction: the sequential path, in this connection
            with transaction.atomic():
                return sync_bucket()
        return sync_bucket()

    settings.WHITELABEL_PAGE_SIZE = 7  # posts and creators straddle pages
    keys = [f"c{c}/p{p}/{i}.jpg" for c in range(4) for p in range(3) for i in range(4)]
    keys += [f"c{c}/thumb.jpg" for c in range(4)] + ["c1/profile/icon.png", "c2/p0/clip.mp4", "c3/.DS_Store"]
    bucket.put(*keys)
    outcomes = [(run_counts(sync()), stored_state())]
    bucket.delete("c1/profile/icon.png", *[k for k in keys if k.startswith("c3/")], "c0/p1/2.jpg")
    bucket.put("c0/p0/1.jpg", body=b"changed")
    bucket.put("c2/p9/new.webp", "c5/p/1.jpg", "c5/profile/banner.png")
    outcomes.append((run_counts(sync()), stored_state()))
    outcomes.append((run_counts(sync()), stored_state()))  # unchanged
    return outcomes


def test_the_pipelined_sync_writes_the_same_rows_as_the_sequential_one(bucket, settings, pipelines):
    # given: what the sequential sync does
    sequential = scenario(bucket, settings, sequential=True)
    assert set(pipelines) == {pipeline.Sequential}
    WhitelabelCreator.objects.all().delete()
    SyncRun.objects.all().delete()
    bucket.clear()
    pipelines.clear()

    # when: the same syncs, pipelined
    pipelined = scenario(bucket, settings, sequential=False)

    # then: same counts, same rows, and no writer thread left
    assert set(pipelines) == {pipeline.Pipelined}
    assert pipelined == sequential
    assert pipelined[1][0]["media_deleted"] > 0 and pipelined[1][0]["media_updated"] == 1
    assert pipelined[2][0]["rows_written"] == 0
    assert writer_threads() == []


def test_a_writer_failure_on_a_page_fails_the_run_deletes_nothing_and_counts_only_committed_pages(
    bucket, settings, monkeypatch
):
    # given: a synced bucket of 4 pages; then c3 vanishes (an orphan) and c4, c5, c6 arrive on pages 4 to 6
    settings.WHITELABEL_PAGE_SIZE = 5
    bucket.put(*[f"c{c}/p/{i}.jpg" for c in range(4) for i in range(5)])
    sync_bucket()
    bucket.delete(*[f"c3/p/{i}.jpg" for i in range(5)])
    bucket.put(*[f"c{c}/p/{i}.jpg" for c in (4, 5, 6) for i in range(5)])
    # one transaction a page, to know which pages committed before the failure
    monkeypatch.setattr(pipeline, "BATCH_PAGES", 1)
    real_write_media = PostgresWriter.write_media
    calls = []

    def flaky_write_media(self, rows):
        calls.append(threading.current_thread().name)
        written = real_write_media(self, rows)  # rows written, then the failure: all must roll back
        if len(calls) == 2:
            raise RuntimeError("database went away")
        return written

    monkeypatch.setattr(PostgresWriter, "write_media", flaky_write_media)
    backends_before = backends()

    # when: writing page 5 (c5) fails
    with pytest.raises(RuntimeError, match="database went away"):
        sync_bucket()

    # then: the run failed; page 4 (c4) is written and counted, page 5 rolled back, page 6 never written
    assert set(calls) == {"whitelabel-write"}
    run = SyncRun.objects.order_by("-pk").first()
    assert run.status == SyncRun.Status.FAILED
    assert "database went away" in run.error
    assert run.finished_at is not None
    assert (run.creators_created, run.posts_created, run.media_created, run.rows_written) == (1, 1, 5, 7)
    assert run.pages == 4
    assert (run.creators_deleted, run.posts_deleted, run.media_deleted) == (0, 0, 0)
    assert sorted(WhitelabelCreator.objects.values_list("folder_name", flat=True)) == ["c0", "c1", "c2", "c3", "c4"]
    assert WhitelabelMedia.objects.filter(s3_key__startswith="c3/").count() == 5
    assert WhitelabelPost.objects.get(creator__folder_name="c4").media_count == 5
    assert WhitelabelCreator.objects.get(folder_name="c4").post_count == 1
    # and the writer is gone with its connection; the lock is free again
    assert writer_threads() == []
    assert_backends_back_to(backends_before)
    monkeypatch.setattr(PostgresWriter, "write_media", real_write_media)
    result = sync_bucket()
    assert (result.counts.creators_created, result.counts.creators_deleted) == (2, 1)


def test_a_writer_failure_with_batched_pages_counts_exactly_what_is_stored(bucket, settings, monkeypatch):
    # given: 8 pages of new creators; the writer is slow on page 1, so the next plans wait for it
    # and are written together, in one transaction; that one fails
    settings.WHITELABEL_PAGE_SIZE = 5
    bucket.put(*[f"c{c}/p/{i}.jpg" for c in range(8) for i in range(5)])
    real_write_media = PostgresWriter.write_media
    calls = []

    def slow_then_failing_write_media(self, rows):
        calls.append(len(rows))
        written = real_write_media(self, rows)
        if len(calls) == 1:
            time.sleep(0.3)
        else:
            raise RuntimeError("database went away")
        return written

    monkeypatch.setattr(PostgresWriter, "write_media", slow_then_failing_write_media)

    # when
    with pytest.raises(RuntimeError):
        sync_bucket()

    # then: the first write (page 1, or the pages planned while the writer connected) committed and
    # counted; the next one, a batch of the pages that waited, in one statement, rolled back, uncounted
    committed_pages = calls[0] // 5
    assert calls[1] > 5
    run = SyncRun.objects.get()
    assert run.status == SyncRun.Status.FAILED
    assert (run.pages, run.creators_created, run.media_created) == (committed_pages, committed_pages, calls[0])
    assert WhitelabelMedia.objects.count() == calls[0]
    assert WhitelabelCreator.objects.count() == committed_pages
    assert writer_threads() == []


def test_a_listing_failure_stops_the_writer_and_deletes_nothing(bucket, settings, fail_listing_on_call, pipelines):
    # given: a synced bucket of 5 pages, then a creator removed from it and a key added on page 1
    settings.WHITELABEL_PAGE_SIZE = 5
    keys = [f"c{c}/p0/{i}.jpg" for c in range(5) for i in range(5)]
    bucket.put(*keys)
    sync_bucket()
    bucket.delete(*[k for k in keys if k.startswith("c4/")])
    bucket.put("c0/p0/new.jpg")
    media_before = WhitelabelMedia.objects.count()
    backends_before = backends()

    # when: the listing breaks on its third page
    fail_listing_on_call(3)
    with pytest.raises(EndpointConnectionError):
        sync_bucket()

    # then: nothing deleted, the failure recorded, what was listed before it written
    assert pipelines == [pipeline.Pipelined, pipeline.Pipelined]
    run = SyncRun.objects.order_by("-pk").first()
    assert run.status == SyncRun.Status.FAILED
    assert "EndpointConnectionError" in run.error
    assert (run.creators_deleted, run.posts_deleted, run.media_deleted) == (0, 0, 0)
    assert (run.pages, run.media_created) == (2, 1)
    assert WhitelabelMedia.objects.filter(s3_key__startswith="c4/").count() == 5
    assert WhitelabelMedia.objects.count() == media_before + 1
    assert WhitelabelPost.objects.get(creator__folder_name="c0").media_count == 6
    # and the writer thread stopped, its connection closed
    assert writer_threads() == []
    assert_backends_back_to(backends_before)


@pytest.mark.parametrize("pages", [1, 5])
def test_pipelined_queries_per_page_are_constant_and_all_counted(
    bucket, settings, django_assert_max_num_queries, pages
):
    # Same bound as test_sync.test_queries_per_page_are_constant; outside a test's transaction the
    # writer's BEGIN/COMMIT take the place of the SAVEPOINT/RELEASE pair.
    settings.WHITELABEL_PAGE_SIZE = 10
    bucket.put(*[f"c{c}/p{p}/{i}.jpg" for c in range(pages) for p in range(2) for i in range(5)])
    fixed, per_page = 21, 6

    with django_assert_max_num_queries(fixed + per_page * pages) as captured:
        result = sync_bucket()

    assert result.counts.pages == pages
    assert result.counts.media_created == 10 * pages
    # the writer's queries are in the caller's log: one COPY a page, or one for pages a lagging writer batched
    assert 1 <= sum(q["sql"].startswith("COPY whitelabel_media_stage") for q in captured.captured_queries) <= pages


def test_an_unchanged_pipelined_resync_writes_nothing(bucket, settings):
    settings.WHITELABEL_PAGE_SIZE = 10
    bucket.put(*[f"c{c}/p{p}/{i}.jpg" for c in range(5) for p in range(2) for i in range(5)])
    sync_bucket()

    with CaptureQueriesContext(connection) as ctx:
        result = sync_bucket()

    writes = [
        q["sql"]
        for q in ctx.captured_queries
        if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE", "COPY"))
        and "whitelabel_syncrun" not in q["sql"]
    ]
    assert writes == []
    assert result.counts.rows_written == 0
