"""The sync against a moto bucket: what it writes, what it leaves alone, what it never deletes."""

import pytest
from botocore.exceptions import EndpointConnectionError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.whitelabel.conftest import CDN
from whitelabel.models import SyncRun, WhitelabelCreator, WhitelabelMedia, WhitelabelPost
from whitelabel.sync import SyncAlreadyRunning, SyncDisabled, sync_bucket
from whitelabel.sync.writes import writer_for

pytestmark = pytest.mark.django_db

LAYOUT = [
    "ana/capa.jpg",
    "ana/profile/icon.png",
    "ana/profile/banner.JPG",
    "ana/praia/1.jpg",
    "ana/praia/10.jpg",
    "ana/praia/2.jpg",
    "ana/praia/clip.mp4",
    "ana/praia/notas.txt",
    "ana/campo/a.webp",
    "Júlia Gonçalves/thumb.png",
    "Júlia Gonçalves/Ensaio 100%/foto 1+1.jpg",
    "Júlia Gonçalves/Ensaio 100%/extra/deep/v.MOV",
    ".DS_Store",
    "ana/",
    "solto.jpg",
]


def writes(queries) -> list[str]:
    return [
        q["sql"]
        for q in queries
        if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")) and "whitelabel_syncrun" not in q["sql"]
    ]


def test_first_sync_builds_the_right_rows(bucket):
    # given
    bucket.put(*LAYOUT)

    # when
    result = sync_bucket()

    # then
    ana = WhitelabelCreator.objects.get(folder_name="ana")
    assert ana.slug == "ana"
    assert ana.status == WhitelabelCreator.Status.NEW
    assert ana.thumbnail_key == "ana/capa.jpg"
    assert ana.thumbnail_url == f"{CDN}/ana/capa.jpg"
    assert ana.icon_url == f"{CDN}/ana/profile/icon.png"
    assert ana.banner_key == "ana/profile/banner.JPG"
    assert ana.post_count == 2
    assert ana.last_synced_at is not None
    praia = WhitelabelPost.objects.get(creator=ana, folder_name="praia")
    assert praia.title == "praia"
    assert praia.media_count == 4
    assert praia.media_summary == {
        "images": [f"{CDN}/ana/praia/1.jpg", f"{CDN}/ana/praia/2.jpg", f"{CDN}/ana/praia/10.jpg"],
        "videos": [f"{CDN}/ana/praia/clip.mp4"],
    }
    julia = WhitelabelCreator.objects.get(folder_name="Júlia Gonçalves")
    assert julia.slug == "julia-goncalves"
    ensaio = julia.posts.get()
    assert ensaio.folder_name == "Ensaio 100%"
    assert ensaio.media_summary == {
        "images": [f"{CDN}/J%C3%BAlia%20Gon%C3%A7alves/Ensaio%20100%25/foto%201%2B1.jpg"],
        "videos": [f"{CDN}/J%C3%BAlia%20Gon%C3%A7alves/Ensaio%20100%25/extra/deep/v.MOV"],
    }
    video = WhitelabelMedia.objects.get(s3_key="ana/praia/clip.mp4")
    assert (video.type, video.size, video.post_id) == ("video", 1, praia.pk)
    assert video.etag and video.last_modified is not None
    assert WhitelabelMedia.objects.count() == 7
    run = result.run
    assert run.status == SyncRun.Status.SUCCEEDED
    assert (run.keys_listed, run.keys_skipped) == (15, 4)
    assert run.skipped_by_reason == {"folder_marker": 1, "hidden_file": 1, "other_shape": 1, "unsupported_type": 1}
    assert (run.creators_created, run.posts_created, run.media_created) == (2, 3, 7)
    assert run.rows_written == 12
    assert run.finished_at is not None


def test_an_unchanged_resync_writes_nothing(bucket):
    bucket.put(*LAYOUT)
    sync_bucket()
    before = list(WhitelabelMedia.objects.values_list("pk", "updated_at").order_by("pk"))

    with CaptureQueriesContext(connection) as ctx:
        result = sync_bucket()

    assert writes(ctx.captured_queries) == []
    assert result.counts.rows_written == 0
    assert result.run.rows_written == 0
    assert list(WhitelabelMedia.objects.values_list("pk", "updated_at").order_by("pk")) == before


def test_a_changed_object_updates_one_row(bucket):
    bucket.put(*LAYOUT)
    sync_bucket()
    untouched = WhitelabelMedia.objects.get(s3_key="ana/praia/1.jpg").updated_at

    bucket.put("ana/praia/2.jpg", body=b"a bigger, different file")
    result = sync_bucket()

    assert result.counts.media_updated == 1
    assert result.counts.rows_written == 1
    changed = WhitelabelMedia.objects.get(s3_key="ana/praia/2.jpg")
    assert changed.size == len(b"a bigger, different file")
    assert WhitelabelMedia.objects.get(s3_key="ana/praia/1.jpg").updated_at == untouched


def test_a_deleted_post_and_creator_are_removed(bucket):
    bucket.put(*LAYOUT)
    sync_bucket()

    bucket.delete("ana/campo/a.webp")  # the post "campo" is gone
    bucket.delete(*[k for k in LAYOUT if k.startswith("Júlia")])  # the creator is gone
    bucket.delete("ana/praia/10.jpg")  # one media file is gone
    result = sync_bucket()

    assert not WhitelabelCreator.objects.filter(folder_name="Júlia Gonçalves").exists()
    ana = WhitelabelCreator.objects.get(folder_name="ana")
    assert list(ana.posts.values_list("folder_name", flat=True)) == ["praia"]
    assert ana.post_count == 1
    praia = ana.posts.get()
    assert praia.media_count == 3
    assert f"{CDN}/ana/praia/10.jpg" not in praia.media_summary["images"]
    assert (result.counts.creators_deleted, result.counts.posts_deleted) == (1, 2)
    assert result.counts.media_deleted == 4  # 10.jpg, a.webp and Júlia's two files


def test_a_removed_profile_image_is_cleared_and_a_new_one_taken(bucket):
    bucket.put(*LAYOUT)
    sync_bucket()

    bucket.delete("ana/profile/icon.png")
    bucket.put("ana/a-capa-melhor.jpg")  # sorts before capa.jpg: the smallest key is the thumbnail
    sync_bucket()

    ana = WhitelabelCreator.objects.get(folder_name="ana")
    assert (ana.icon_key, ana.icon_url) == ("", "")
    assert ana.thumbnail_key == "ana/a-capa-melhor.jpg"
    assert ana.banner_key == "ana/profile/banner.JPG"


def test_a_listing_that_fails_on_page_3_deletes_nothing_and_records_the_failure(bucket, settings, fail_listing_on_call):
    # given: a synced bucket of 5 pages, then a creator removed from it
    settings.WHITELABEL_PAGE_SIZE = 5
    keys = [f"c{c}/p{p}/{i}.jpg" for c in range(5) for p in range(1) for i in range(5)]
    bucket.put(*keys)
    sync_bucket()
    bucket.delete(*[k for k in keys if k.startswith("c4/")])
    bucket.put("c0/p0/new.jpg")
    rows_before = (WhitelabelCreator.objects.count(), WhitelabelPost.objects.count(), WhitelabelMedia.objects.count())

    # when: the listing breaks on its third page
    fail_listing_on_call(3)
    with pytest.raises(EndpointConnectionError):
        sync_bucket()

    # then
    run = SyncRun.objects.order_by("-pk").first()
    assert run.status == SyncRun.Status.FAILED
    assert "EndpointConnectionError" in run.error
    assert run.finished_at is not None
    assert (run.creators_deleted, run.posts_deleted, run.media_deleted) == (0, 0, 0)
    assert WhitelabelCreator.objects.filter(folder_name="c4").exists()
    assert WhitelabelMedia.objects.filter(s3_key__startswith="c4/").count() == 5
    # what was listed before the failure was written, and its post's figures kept right
    assert WhitelabelMedia.objects.count() == rows_before[2] + 1
    assert WhitelabelPost.objects.get(creator__folder_name="c0").media_count == 6
    assert not SyncRun.objects.filter(status=SyncRun.Status.RUNNING).exists()


def test_prefix_touches_only_that_creator(bucket):
    bucket.put(*LAYOUT)
    sync_bucket()
    bucket.delete("Júlia Gonçalves/Ensaio 100%/foto 1+1.jpg")  # would be deleted by a full sync
    bucket.put("ana/praia/3.jpg", "ana/nova/1.jpg")
    bucket.delete("ana/campo/a.webp")

    result = sync_bucket(prefix="ana")

    assert result.run.prefix == "ana"
    ana = WhitelabelCreator.objects.get(folder_name="ana")
    assert sorted(ana.posts.values_list("folder_name", flat=True)) == ["nova", "praia"]
    assert WhitelabelMedia.objects.filter(s3_key="Júlia Gonçalves/Ensaio 100%/foto 1+1.jpg").exists()
    assert (result.counts.media_created, result.counts.posts_created, result.counts.posts_deleted) == (2, 1, 1)
    assert WhitelabelPost.objects.get(folder_name="Ensaio 100%").media_count == 2


def test_prefix_of_a_vanished_creator_removes_it(bucket):
    bucket.put(*LAYOUT)
    sync_bucket()
    bucket.delete(*[k for k in LAYOUT if k.startswith("Júlia")])

    sync_bucket(prefix="Júlia Gonçalves")

    assert list(WhitelabelCreator.objects.values_list("folder_name", flat=True)) == ["ana"]


def test_dry_run_writes_nothing(bucket):
    bucket.put(*LAYOUT)

    with CaptureQueriesContext(connection) as ctx:
        result = sync_bucket(dry_run=True)

    assert [
        q["sql"] for q in ctx.captured_queries if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
    ] == []
    assert result.run is None
    assert not SyncRun.objects.exists()
    assert not WhitelabelCreator.objects.exists()
    assert (result.counts.creators_created, result.counts.posts_created, result.counts.media_created) == (2, 3, 7)


def test_dry_run_reports_what_a_real_sync_would_change(bucket):
    bucket.put(*LAYOUT)
    sync_bucket()
    bucket.delete("ana/campo/a.webp")
    bucket.put("ana/praia/2.jpg", body=b"changed")

    result = sync_bucket(dry_run=True)

    c = result.counts
    assert (c.media_updated, c.media_deleted, c.posts_deleted, c.media_created) == (1, 1, 1, 0)
    assert WhitelabelPost.objects.filter(folder_name="campo").exists()
    assert WhitelabelMedia.objects.get(s3_key="ana/praia/2.jpg").size == 1


def test_hidden_creators_stay_hidden(bucket):
    bucket.put(*LAYOUT)
    sync_bucket()
    WhitelabelCreator.objects.filter(folder_name="ana").update(status=WhitelabelCreator.Status.HIDDEN)

    bucket.put("ana/outra-capa.jpg", "ana/praia/99.jpg")
    sync_bucket()

    assert WhitelabelCreator.objects.get(folder_name="ana").status == WhitelabelCreator.Status.HIDDEN


def test_slugs_stay_unique_when_folder_names_collide(bucket):
    bucket.put("Ana Maria/p/1.jpg", "ana-maria/p/1.jpg", "ANA MARIA/p/1.jpg")

    sync_bucket()

    slugs = sorted(WhitelabelCreator.objects.values_list("slug", flat=True))
    assert len(set(slugs)) == 3
    assert "ana-maria" in slugs


def test_the_bucket_prefix_setting_is_honoured(bucket, settings):
    settings.WHITELABEL_PREFIX = "site/"
    bucket.put("site/ana/p/1.jpg", "other/bia/p/1.jpg")

    sync_bucket()

    assert list(WhitelabelCreator.objects.values_list("folder_name", flat=True)) == ["ana"]
    assert WhitelabelMedia.objects.get().url == f"{CDN}/site/ana/p/1.jpg"


def test_it_is_disabled_without_a_bucket(settings):
    settings.WHITELABEL_BUCKET = None

    with pytest.raises(SyncDisabled, match="WHITELABEL_BUCKET"):
        sync_bucket()

    assert not SyncRun.objects.exists()


@pytest.mark.parametrize("pages", [1, 5])
def test_queries_per_page_are_constant(bucket, settings, django_assert_max_num_queries, pages):
    # Every page brings a new creator with 2 new posts of 5 new media each: the worst case.
    settings.WHITELABEL_PAGE_SIZE = 10
    bucket.put(*[f"c{c}/p{p}/{i}.jpg" for c in range(pages) for p in range(2) for i in range(5)])
    # fixed: lock, run row, URL-base check, preload, media staging table (PostgreSQL), finish
    # (orphan selects, aggregates, run save); per page: creator and post upserts, the media upsert
    # (on PostgreSQL a COPY into the staging table plus one INSERT … SELECT: both counted, the COPY
    # goes through Django's cursor), plus the SAVEPOINT/RELEASE pair around the page's writes
    # inside a test's transaction (what is stored was preloaded; a new post has no media to compare)
    fixed, per_page = 21, 6

    with django_assert_max_num_queries(fixed + per_page * pages):
        result = sync_bucket()

    assert result.counts.pages == pages
    assert result.counts.media_created == 10 * pages


def test_an_unchanged_resync_costs_one_select_per_page(bucket, settings):
    settings.WHITELABEL_PAGE_SIZE = 10
    bucket.put(*[f"c{c}/p{p}/{i}.jpg" for c in range(5) for p in range(2) for i in range(5)])
    sync_bucket()

    with CaptureQueriesContext(connection) as ctx:
        sync_bucket()

    media_selects = [
        q
        for q in ctx.captured_queries
        if q["sql"].startswith("SELECT id, s3_key") and ("post_id IN (" in q["sql"] or "post_id = ANY(" in q["sql"])
    ]
    assert len(media_selects) == 5
    assert writes(ctx.captured_queries) == []


def test_a_second_sync_while_one_runs_exits(bucket, is_postgres):
    if is_postgres:
        pytest.skip("on PostgreSQL the advisory lock is the lock: see test_lock.py")
    SyncRun.objects.create(status=SyncRun.Status.RUNNING)

    with pytest.raises(SyncAlreadyRunning):
        sync_bucket()

    assert SyncRun.objects.count() == 1


def test_a_new_cdn_base_url_rewrites_every_url(bucket, settings):
    bucket.put(*LAYOUT)
    sync_bucket()

    settings.WHITELABEL_CDN_BASE_URL = "https://media.example.org/wl"
    result = sync_bucket()

    assert result.counts.media_updated == 7
    assert all(
        url.startswith("https://media.example.org/wl/") for url in WhitelabelMedia.objects.values_list("url", flat=True)
    )
    ana = WhitelabelCreator.objects.get(folder_name="ana")
    assert ana.icon_url == "https://media.example.org/wl/ana/profile/icon.png"
    praia = WhitelabelPost.objects.get(folder_name="praia")
    assert praia.media_summary["videos"] == ["https://media.example.org/wl/ana/praia/clip.mp4"]
    assert sync_bucket().counts.rows_written == 0


def test_a_database_error_on_a_page_fails_the_run_without_counting_that_page(bucket, settings, monkeypatch):
    # given: two pages; writing the media of the second one fails
    settings.WHITELABEL_PAGE_SIZE = 5
    bucket.put(*[f"c{c}/p/{i}.jpg" for c in range(2) for i in range(5)])
    # (after the media rows were written, whichever way the backend writes them: all of the
    # page's writes must roll back)
    writer_class = type(writer_for(dry_run=False))
    real_write_media = writer_class.write_media
    calls = []

    def flaky_write_media(self, rows):
        calls.append(len(rows))
        written = real_write_media(self, rows)
        if len(calls) == 2:
            raise RuntimeError("database went away")
        return written

    monkeypatch.setattr(writer_class, "write_media", flaky_write_media)

    # when
    with pytest.raises(RuntimeError):
        sync_bucket()

    # then: page 1 is written and counted, page 2 rolled back and not counted
    run = SyncRun.objects.get()
    assert run.status == SyncRun.Status.FAILED
    assert "database went away" in run.error
    assert (run.creators_created, run.posts_created, run.media_created) == (1, 1, 5)
    assert list(WhitelabelCreator.objects.values_list("folder_name", flat=True)) == ["c0"]
    assert WhitelabelPost.objects.get().media_count == 5


@pytest.mark.postgres
def test_on_postgres_media_go_through_the_staging_table_and_leave_it_empty(bucket, settings, monkeypatch):
    # given: three pages; the second fails after its media were copied and upserted
    settings.WHITELABEL_PAGE_SIZE = 5
    bucket.put(*[f"c{c}/p/{i}.jpg" for c in range(3) for i in range(5)])
    writer_class = type(writer_for(dry_run=False))
    real_write_media = writer_class.write_media
    calls = []

    def flaky_write_media(self, rows):
        calls.append(len(rows))
        written = real_write_media(self, rows)
        if len(calls) == 2:
            raise RuntimeError("database went away")
        return written

    monkeypatch.setattr(writer_class, "write_media", flaky_write_media)
    with CaptureQueriesContext(connection) as ctx, pytest.raises(RuntimeError):
        sync_bucket()
    assert sum(q["sql"].startswith("COPY whitelabel_media_stage") for q in ctx.captured_queries) == 2
    monkeypatch.setattr(writer_class, "write_media", real_write_media)

    # when: the next sync (same session: the staging table is reused)
    result = sync_bucket()

    # then: nothing of the failed page lingered in the stage, every row is right
    assert (result.counts.media_created, result.counts.media_updated) == (10, 0)
    assert WhitelabelMedia.objects.count() == 15
    assert WhitelabelPost.objects.get(creator__folder_name="c1").media_count == 5
    media = WhitelabelMedia.objects.get(s3_key="c2/p/3.jpg")
    assert (media.url, media.type, media.size, media.sort_key) == (f"{CDN}/c2/p/3.jpg", "image", 1, "0000000003.jpg")
    assert media.etag and media.last_modified is not None and media.created_at is not None
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM whitelabel_media_stage")
        assert cursor.fetchone()[0] == 0
