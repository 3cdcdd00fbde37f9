import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from catalog.models import Creator, Media, Post
from catalog.services.publishing import PublishError, publish_whitelabel, set_posts_status
from tests.catalog.factories import (
    CreatorFactory,
    WhitelabelCreatorFactory,
    WhitelabelMediaFactory,
    WhitelabelPostFactory,
)
from whitelabel.models import WhitelabelCreator, WhitelabelPost

pytestmark = pytest.mark.django_db


def _staging(posts=3, media=2, **creator_kwargs):
    creator = WhitelabelCreatorFactory(**creator_kwargs)
    for _ in range(posts):
        post = WhitelabelPostFactory(creator=creator)
        for _ in range(media):
            WhitelabelMediaFactory(post=post)
    return creator


def _snapshot():
    return (
        sorted(Creator.objects.values_list("id", "name", "slug", "status", "post_count", "source_id", "updated_at")),
        sorted(Post.objects.values_list("id", "creator_id", "title", "status", "published_at", "source_id", "updated_at")),
        sorted(Media.objects.values_list("id", "post_id", "key", "type", "position", "source_id")),
    )


def test_it_publishes_a_staging_creator_with_posts_and_media():
    staged = _staging(posts=3, media=2)

    result = publish_whitelabel(folder_names=[staged.folder_name])

    creator = Creator.objects.get()
    assert (creator.name, creator.slug, creator.source_id) == (staged.folder_name, staged.slug, staged.pk)
    assert creator.icon_url == staged.icon_url
    assert creator.post_count == 3 and creator.status == Creator.Status.PUBLISHED
    assert Post.objects.filter(creator=creator, status=Post.Status.PUBLISHED).count() == 3
    assert Media.objects.filter(post__creator=creator).count() == 6
    assert (result.creators_created, result.posts_created, result.media_created) == (1, 3, 6)
    staged.refresh_from_db()
    assert staged.status == WhitelabelCreator.Status.ACTIVE


def test_media_keep_the_staging_order_and_posts_take_the_upload_time():
    staged = _staging(posts=1, media=3)
    wl_post = staged.posts.get()

    publish_whitelabel(folder_names=[staged.slug])

    post = Post.objects.get()
    keys = list(wl_post.media.order_by("sort_key").values_list("s3_key", flat=True))
    assert list(post.media.order_by("position").values_list("key", flat=True)) == keys
    assert list(post.media.order_by("position").values_list("position", flat=True)) == [0, 1, 2]
    assert post.published_at == max(wl_post.media.values_list("last_modified", flat=True))


def test_publishing_twice_changes_nothing(django_assert_max_num_queries):
    staged = _staging(posts=4, media=3)
    publish_whitelabel(folder_names=[staged.folder_name])
    before = _snapshot()

    # Reads only: no INSERT, UPDATE or DELETE on the second run.
    with django_assert_max_num_queries(16) as ctx:
        result = publish_whitelabel(folder_names=[staged.folder_name])

    assert not result.changed
    assert _snapshot() == before
    writes = [q["sql"] for q in ctx.captured_queries if q["sql"].split()[0] in {"INSERT", "UPDATE", "DELETE"}]
    assert writes == []


def test_new_staging_posts_appear_on_the_next_publish():
    staged = _staging(posts=2, media=1)
    publish_whitelabel(folder_names=[staged.folder_name])
    new = WhitelabelPostFactory(creator=staged)
    WhitelabelMediaFactory(post=new)

    result = publish_whitelabel(folder_names=[staged.folder_name])

    assert result.posts_created == 1 and result.media_created == 1
    assert Post.objects.get(source=new).status == Post.Status.PUBLISHED
    assert Creator.objects.get().post_count == 3


def test_posts_removed_from_staging_are_hidden_not_deleted():
    staged = _staging(posts=3, media=2)
    publish_whitelabel(folder_names=[staged.folder_name])
    gone = staged.posts.order_by("pk").first()
    gone_catalog = Post.objects.get(source=gone)

    gone.delete()  # the sync removes a folder that left the bucket
    result = publish_whitelabel(folder_names=[staged.folder_name])

    gone_catalog.refresh_from_db()
    assert gone_catalog.status == Post.Status.HIDDEN and gone_catalog.removed_from_source
    assert gone_catalog.media.count() == 2  # kept while anyone may be viewing them
    assert result.posts_hidden == 1
    assert Creator.objects.get().post_count == 2
    assert Post.objects.count() == 3


def test_a_post_that_comes_back_is_shown_again_and_relinked():
    staged = _staging(posts=1, media=1)
    publish_whitelabel(folder_names=[staged.folder_name])
    old = staged.posts.get()
    folder = old.folder_name
    old.delete()
    publish_whitelabel(folder_names=[staged.folder_name])

    back = WhitelabelPostFactory(creator=staged, folder_name=folder)
    WhitelabelMediaFactory(post=back)
    publish_whitelabel(folder_names=[staged.folder_name])

    post = Post.objects.get()
    assert post.status == Post.Status.PUBLISHED and not post.removed_from_source
    assert post.source_id == back.pk


def test_posts_hidden_by_an_admin_stay_hidden():
    staged = _staging(posts=2, media=1)
    publish_whitelabel(folder_names=[staged.folder_name])
    post = Post.objects.first()
    set_posts_status(post_ids=[post.pk], status=Post.Status.HIDDEN)

    publish_whitelabel(folder_names=[staged.folder_name])

    post.refresh_from_db()
    assert post.status == Post.Status.HIDDEN
    assert Creator.objects.get().post_count == 1


def test_media_removed_from_the_bucket_are_dropped():
    staged = _staging(posts=1, media=3)
    publish_whitelabel(folder_names=[staged.folder_name])
    staged.posts.get().media.order_by("s3_key").first().delete()

    result = publish_whitelabel(folder_names=[staged.folder_name])

    assert result.media_deleted == 1
    assert list(Media.objects.order_by("position").values_list("position", flat=True)) == [0, 1]


def test_admin_edits_survive_a_republish():
    staged = _staging(posts=1, media=1)
    publish_whitelabel(folder_names=[staged.folder_name])
    Creator.objects.update(name="Nome editado", description="Bio", is_featured=True)
    Post.objects.update(title="Título editado")

    publish_whitelabel(folder_names=[staged.folder_name])

    assert Creator.objects.values_list("name", "description", "is_featured").get() == ("Nome editado", "Bio", True)
    assert Post.objects.get().title == "Título editado"


def test_a_slug_taken_by_a_hand_made_creator_gets_a_suffix():
    CreatorFactory(slug="ana")
    staged = _staging(posts=1, media=1, slug="ana")

    publish_whitelabel(folder_names=[staged.folder_name])

    assert Creator.objects.get(source=staged).slug == "ana-2"


def test_publish_all_skips_hidden_staging_creators_and_hides_vanished_ones():
    shown = _staging(posts=1, media=1)
    hidden = _staging(posts=1, media=1, status=WhitelabelCreator.Status.HIDDEN)
    leaving = _staging(posts=2, media=1)
    publish_whitelabel(publish_all=True)
    assert set(Creator.objects.values_list("source_folder", flat=True)) == {shown.folder_name, leaving.folder_name}

    leaving.delete()  # the whole folder left the bucket
    result = publish_whitelabel(publish_all=True)

    gone = Creator.objects.get(source_folder=leaving.folder_name)
    assert gone.status == Creator.Status.HIDDEN and result.creators_hidden == 1
    assert set(gone.posts.values_list("status", flat=True)) == {Post.Status.HIDDEN}
    assert Creator.objects.get(source_folder=shown.folder_name).status == Creator.Status.PUBLISHED
    hidden.refresh_from_db()
    assert hidden.status == WhitelabelCreator.Status.HIDDEN


def test_publishing_is_set_based(django_assert_max_num_queries):
    small = _staging(posts=1, media=1)
    big = _staging(posts=40, media=3)

    with django_assert_max_num_queries(25) as small_ctx:
        publish_whitelabel(folder_names=[small.folder_name])
    with django_assert_max_num_queries(25) as big_ctx:
        publish_whitelabel(folder_names=[big.folder_name])

    assert len(big_ctx.captured_queries) <= len(small_ctx.captured_queries) + 2


def test_an_unknown_creator_is_an_error():
    with pytest.raises(PublishError):
        publish_whitelabel(folder_names=["nobody"])


def test_the_command_publishes_and_ends_with_a_summary(capsys):
    staged = _staging(posts=2, media=2)

    call_command("publish_whitelabel", "--creator", staged.folder_name)

    out = capsys.readouterr().out
    assert "Published 1 creators" in out and "posts: 2 new" in out
    assert Post.objects.count() == 2


def test_the_command_needs_all_or_a_creator():
    with pytest.raises(CommandError):
        call_command("publish_whitelabel")
    with pytest.raises(CommandError):
        call_command("publish_whitelabel", "--creator", "nobody")


def test_the_contract_task_name_runs_the_publish():
    from config.celery import app

    app.loader.import_default_modules()  # what a worker does at start (autodiscovery)
    staged = _staging(posts=1, media=1)
    task = app.tasks["whitelabel.tasks.publish"]

    summary = task.apply(kwargs={"creator": staged.folder_name}).get()

    assert "1 creators" in summary
    assert Post.objects.count() == 1
    assert "catalog.tasks.publish" in app.tasks


def test_new_posts_get_a_preview_after_commit(django_capture_on_commit_callbacks, monkeypatch):
    staged = _staging(posts=2, media=1)
    calls = []
    monkeypatch.setattr("catalog.tasks.generate_previews.apply_async", lambda kwargs, **options: calls.append(kwargs))

    with django_capture_on_commit_callbacks(execute=True):
        publish_whitelabel(folder_names=[staged.folder_name])

    assert sorted(calls[0]["post_ids"]) == sorted(Post.objects.values_list("id", flat=True))
    assert WhitelabelPost.objects.count() == 2


def test_publish_all_with_nothing_staged_publishes_nothing_and_does_not_crash():
    # given: an empty staging area (a fresh deploy, before the first sync)
    assert not WhitelabelCreator.objects.exists()

    # when
    result = publish_whitelabel(publish_all=True)
    call_command("publish_whitelabel", "--all", stdout=io.StringIO())

    # then
    assert (result.creators, result.creators_created, result.posts_created) == (0, 0, 0)
    assert not Creator.objects.exists()
