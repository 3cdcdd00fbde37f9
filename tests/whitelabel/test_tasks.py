import pytest

from whitelabel.models import SyncRun, WhitelabelMedia
from whitelabel.tasks import sync_bucket

pytestmark = pytest.mark.django_db


def test_the_task_syncs_and_records_a_task_run(bucket):
    bucket.put("ana/p/1.jpg")

    outcome = sync_bucket.apply().get()

    assert outcome["status"] == "succeeded"
    run = SyncRun.objects.get(pk=outcome["run_id"])
    assert (run.trigger, run.status) == (SyncRun.Trigger.TASK, SyncRun.Status.SUCCEEDED)
    assert WhitelabelMedia.objects.count() == 1


def test_the_task_is_a_no_op_when_disabled(settings):
    settings.WHITELABEL_BUCKET = None

    outcome = sync_bucket.apply().get()

    assert outcome == {"status": "disabled", "message": "White-label sync disabled: WHITELABEL_BUCKET is not set."}
    assert not SyncRun.objects.exists()


def test_the_task_exits_when_another_sync_runs(bucket, another_sync_running):
    outcome = sync_bucket.apply().get()

    assert outcome["status"] == "already_running"


def test_the_task_is_scheduled_by_beat():
    from config.beat import PERIODIC_TASKS

    assert {"name": "Sync white-label bucket", "task": "whitelabel.tasks.sync_bucket", "every": 900} in PERIODIC_TASKS
