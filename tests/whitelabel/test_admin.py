import importlib.machinery
import sys
import types
from unittest import mock

import pytest
from django.contrib import admin as django_admin
from django.urls import reverse

from whitelabel.models import SyncRun, WhitelabelCreator, WhitelabelMedia, WhitelabelPost
from whitelabel.sync import sync_bucket

pytestmark = pytest.mark.django_db


@pytest.fixture
def synced(bucket):
    bucket.put("ana/capa.jpg", "ana/praia/1.jpg", "ana/praia/2.mp4", "bia/p/1.jpg")
    sync_bucket()
    return bucket


@pytest.mark.parametrize("model", ["whitelabelcreator", "whitelabelpost", "whitelabelmedia", "syncrun"])
def test_changelists_and_searches_render(admin_client, synced, model):
    url = reverse(f"admin:whitelabel_{model}_changelist")

    assert admin_client.get(url).status_code == 200
    assert admin_client.get(url, {"q": "ana"}).status_code == 200


def test_change_pages_render(admin_client, synced):
    creator = WhitelabelCreator.objects.get(folder_name="ana")
    post = WhitelabelPost.objects.get(folder_name="praia")
    media = WhitelabelMedia.objects.first()
    run = SyncRun.objects.get()

    for url in [
        reverse("admin:whitelabel_whitelabelcreator_change", args=[creator.pk]),
        reverse("admin:whitelabel_whitelabelpost_change", args=[post.pk]),
        reverse("admin:whitelabel_whitelabelmedia_change", args=[media.pk]),
        reverse("admin:whitelabel_syncrun_change", args=[run.pk]),
    ]:
        response = admin_client.get(url)
        assert response.status_code == 200, url
    assert (
        b"ana/praia/2.mp4"
        in admin_client.get(reverse("admin:whitelabel_whitelabelpost_change", args=[post.pk])).content
    )


def test_the_creator_list_shows_a_thumbnail(admin_client, synced):
    response = admin_client.get(reverse("admin:whitelabel_whitelabelcreator_changelist"))

    assert b'<img src="https://cdn.example.com/ana/capa.jpg"' in response.content


def test_hide_action_hides_the_selected_creators(admin_client, synced):
    ana = WhitelabelCreator.objects.get(folder_name="ana")

    admin_client.post(
        reverse("admin:whitelabel_whitelabelcreator_changelist"),
        {"action": "hide", "_selected_action": [ana.pk]},
    )

    ana.refresh_from_db()
    assert ana.status == WhitelabelCreator.Status.HIDDEN
    assert WhitelabelCreator.objects.get(folder_name="bia").status == WhitelabelCreator.Status.NEW


def test_sync_this_creator_action_runs_a_sync_of_its_prefix(
    admin_client, synced, eager_tasks, django_capture_on_commit_callbacks
):
    ana = WhitelabelCreator.objects.get(folder_name="ana")
    synced.put("ana/praia/3.jpg", "bia/p/2.jpg")

    # The task is queued on commit; the test's transaction never commits, so run the callbacks.
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:whitelabel_whitelabelcreator_changelist"),
            {"action": "sync_selected", "_selected_action": [ana.pk]},
            follow=True,
        )

    run = SyncRun.objects.order_by("-pk").first()
    assert (run.trigger, run.prefix, run.status) == (SyncRun.Trigger.ADMIN, "ana", SyncRun.Status.SUCCEEDED)
    assert WhitelabelMedia.objects.filter(s3_key="ana/praia/3.jpg").exists()
    assert not WhitelabelMedia.objects.filter(s3_key="bia/p/2.jpg").exists()
    assert "Sync queued" in response.content.decode()


def test_sync_now_button_runs_a_sync_that_appears_in_the_history(
    admin_client, bucket, eager_tasks, django_capture_on_commit_callbacks
):
    bucket.put("ana/praia/1.jpg")

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(reverse("admin:whitelabel_syncrun_sync_now"), follow=True)

    assert response.status_code == 200
    run = SyncRun.objects.get()
    assert (run.trigger, run.status, run.media_created) == (SyncRun.Trigger.ADMIN, SyncRun.Status.SUCCEEDED, 1)
    assert "Sync queued" in response.content.decode()


def test_outside_a_transaction_an_in_process_sync_reports_its_outcome(bucket, eager_tasks):
    from whitelabel.services import request_sync

    bucket.put("ana/praia/1.jpg")

    # on_commit runs at once when no transaction is open, as in an admin request
    with mock.patch("whitelabel.services.transaction.on_commit", side_effect=lambda func: func()):
        outcome = request_sync(prefixes=None)

    assert outcome.ok
    assert outcome.message.startswith("Sync succeeded: 1 keys listed")


def test_sync_now_says_the_sync_is_disabled_without_a_bucket(admin_client, settings, eager_tasks):
    settings.WHITELABEL_BUCKET = None

    listing = admin_client.get(reverse("admin:whitelabel_syncrun_changelist"))
    response = admin_client.post(reverse("admin:whitelabel_syncrun_sync_now"), follow=True)

    assert "WHITELABEL_BUCKET is not set" in listing.content.decode()
    assert "WHITELABEL_BUCKET is not set" in response.content.decode()
    assert not SyncRun.objects.exists()


def test_sync_now_needs_a_post(admin_client):
    assert admin_client.get(reverse("admin:whitelabel_syncrun_sync_now")).status_code == 405


def test_staff_without_permission_cannot_start_a_sync(client, staff_user, bucket, eager_tasks):
    from django.contrib.auth.models import Permission

    staff_user.user_permissions.add(Permission.objects.get(codename="view_syncrun"))
    client.force_login(staff_user)

    client.post(reverse("admin:whitelabel_syncrun_sync_now"))

    assert not SyncRun.objects.exists()


def test_sync_runs_are_read_only(admin_client, synced):
    run = SyncRun.objects.get()
    model_admin = django_admin.site._registry[SyncRun]

    response = admin_client.post(reverse("admin:whitelabel_syncrun_change", args=[run.pk]), {"status": "failed"})

    assert response.status_code == 403
    assert not model_admin.has_delete_permission(None, run)
    run.refresh_from_db()
    assert run.status == SyncRun.Status.SUCCEEDED


def test_catalog_can_plug_its_publish_action_in(admin_client, synced, monkeypatch):
    calls = []

    def publish_to_catalog(modeladmin, request, queryset):
        calls.append(sorted(queryset.values_list("folder_name", flat=True)))

    publish_to_catalog.short_description = "Publish to catalog"
    module = types.ModuleType("catalog.whitelabel_actions")
    module.__spec__ = importlib.machinery.ModuleSpec("catalog.whitelabel_actions", None)
    module.CREATOR_ACTIONS = [publish_to_catalog]
    monkeypatch.setitem(sys.modules, "catalog.whitelabel_actions", module)
    ana = WhitelabelCreator.objects.get(folder_name="ana")

    listing = admin_client.get(reverse("admin:whitelabel_whitelabelcreator_changelist"))
    admin_client.post(
        reverse("admin:whitelabel_whitelabelcreator_changelist"),
        {"action": "publish_to_catalog", "_selected_action": [ana.pk]},
    )

    assert "Publish to catalog" in listing.content.decode()
    assert calls == [["ana"]]
