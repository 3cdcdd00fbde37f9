"""Two syncs never run at once: the second says so and exits."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from whitelabel.models import SyncRun, WhitelabelMedia
from whitelabel.sync import SyncAlreadyRunning, SyncResult, sync_bucket


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_syncs_run_one(bucket):
    # given: a first sync held inside its listing
    bucket.put("ana/p/1.jpg", "ana/p/2.jpg")
    entered, release = threading.Event(), threading.Event()

    def hold(**kwargs):
        entered.set()
        release.wait(timeout=10)

    bucket.client.meta.events.register("before-call.s3.ListObjectsV2", hold)
    outcome = {}

    def first():
        try:
            outcome["first"] = sync_bucket()
        except Exception as exc:  # noqa: BLE001 - asserted below
            outcome["first"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert entered.wait(timeout=10)

        # when: a second sync starts meanwhile
        with pytest.raises(SyncAlreadyRunning):
            sync_bucket()
    finally:
        release.set()
        thread.join(timeout=30)
        bucket.client.meta.events.unregister("before-call.s3.ListObjectsV2", hold)

    # then: the first one finished its work, the second left no trace
    assert isinstance(outcome["first"], SyncResult)
    assert outcome["first"].run.status == SyncRun.Status.SUCCEEDED
    assert SyncRun.objects.count() == 1
    assert WhitelabelMedia.objects.count() == 2
    # and the lock is free again
    assert sync_bucket().run.status == SyncRun.Status.SUCCEEDED


@pytest.mark.django_db
def test_a_sync_exits_while_another_holds_the_lock(bucket, another_sync_running):
    bucket.put("ana/p/1.jpg")
    runs_before = SyncRun.objects.count()

    with pytest.raises(SyncAlreadyRunning, match="Another white-label sync is running"):
        sync_bucket()

    assert SyncRun.objects.count() == runs_before
    assert not WhitelabelMedia.objects.exists()


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_running_row_left_by_a_dead_process_does_not_block_on_postgres(bucket):
    leftover = SyncRun.objects.create(status=SyncRun.Status.RUNNING)
    bucket.put("ana/p/1.jpg")

    result = sync_bucket()

    assert result.run.status == SyncRun.Status.SUCCEEDED
    leftover.refresh_from_db()
    assert leftover.status == SyncRun.Status.FAILED
    assert "Interrupted" in leftover.error


@pytest.mark.django_db
def test_a_stale_running_row_is_taken_over(bucket, is_postgres):
    leftover = SyncRun.objects.create(status=SyncRun.Status.RUNNING)
    SyncRun.objects.filter(pk=leftover.pk).update(started_at=timezone.now() - timedelta(days=1))
    bucket.put("ana/p/1.jpg")

    result = sync_bucket()

    assert result.run.status == SyncRun.Status.SUCCEEDED
    leftover.refresh_from_db()
    assert leftover.status == SyncRun.Status.FAILED
