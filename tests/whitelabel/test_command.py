from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from whitelabel.models import SyncRun, WhitelabelCreator, WhitelabelMedia

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command("sync_whitelabel", *args, stdout=out, verbosity=2)
    return out.getvalue()


def test_it_syncs_with_progress_and_a_summary(bucket, settings):
    settings.WHITELABEL_PAGE_SIZE = 2
    bucket.put("ana/p/1.jpg", "ana/p/2.jpg", "ana/p/3.mp4", "ana/p/x.txt")

    output = run()

    assert "keys listed" in output and "keys/s" in output
    assert "Skipped keys by reason: unsupported_type=1" in output
    last = output.strip().splitlines()[-1]
    assert last.startswith("Sync succeeded: 4 keys listed (1 skipped)")
    assert "media +3" in last
    assert SyncRun.objects.get().trigger == SyncRun.Trigger.COMMAND


def test_dry_run_writes_nothing(bucket):
    bucket.put("ana/p/1.jpg")

    output = run("--dry-run")

    assert "Dry run (nothing written)" in output
    assert not WhitelabelMedia.objects.exists()
    assert not SyncRun.objects.exists()


def test_prefix_syncs_one_creator(bucket):
    bucket.put("ana/p/1.jpg", "bia/p/1.jpg")

    run("--prefix", "bia")

    assert list(WhitelabelCreator.objects.values_list("folder_name", flat=True)) == ["bia"]


def test_it_says_the_sync_is_disabled_without_a_bucket(settings):
    settings.WHITELABEL_BUCKET = None

    output = run()

    assert "White-label sync disabled: WHITELABEL_BUCKET is not set." in output


def test_it_says_another_sync_is_running(bucket, another_sync_running):
    output = run()

    assert "Another white-label sync is running" in output


def test_a_failed_sync_is_a_command_error(bucket, fail_listing_on_call):
    bucket.put("ana/p/1.jpg")
    fail_listing_on_call(1)

    with pytest.raises(CommandError, match="nothing was deleted"):
        run()

    assert SyncRun.objects.get().status == SyncRun.Status.FAILED


def test_messages_are_translated_to_portuguese(settings):
    from django.utils import translation

    from whitelabel.sync import disabled_message

    with translation.override("pt-br"):
        assert disabled_message() == "Sincronização white-label desativada: WHITELABEL_BUCKET não está definido."


def test_the_command_speaks_portuguese_by_default(bucket, settings):
    settings.LANGUAGE_CODE = "pt-br"
    bucket.put("ana/p/1.jpg")

    output = run()

    assert "Sincronização concluída: 1 chaves listadas (0 ignoradas)" in output
