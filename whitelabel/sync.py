"""
Mirror the white-label bucket into the staging tables (contract §7).

    sync_bucket(prefix=..., dry_run=..., trigger=...) -> SyncResult

1. Take the lock (PostgreSQL advisory lock, else the "one running SyncRun"
   unique constraint) and record a `SyncRun`; a second sync says so and exits.
2. List the bucket with boto3's paginator (1,000 keys a page) in a background
   thread that stays two pages ahead, so the network, XML parsing and the
   database overlap. Meanwhile, preload the stored creators and posts.
3. Per page, read first, outside any transaction: one SELECT of the stored
   media of the page's stored posts. Compare (etag, size, type, post; URLs are
   checked once per run). Only if something differs, one transaction with one
   upsert per table holding only the new or changed rows: on PostgreSQL the media
   are COPYed into a temporary staging table and moved with one
   `INSERT … SELECT … ON CONFLICT`, new posts are inserted from arrays; elsewhere
   `bulk_create(update_conflicts=True)`. An unchanged re-sync writes nothing, one
   query a page.
4. Only after the listing completed: delete the creators, posts and media
   that were not seen, fix profile images that disappeared, ANALYZE after a
   big load, and recompute aggregates (post counts, media summaries)
   set-based, only for what changed. Any exception before that marks the run
   failed and deletes nothing.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from whitelabel import s3
from whitelabel.keys import KeyKind, natural_sort_key, object_url, parse_key, title_from_folder
from whitelabel.models import SyncRun, WhitelabelCreator, WhitelabelMedia, WhitelabelPost

logger = logging.getLogger(__name__)

# pg_advisory_lock key: "WLSY" as an int. Any constant works as long as only this sync uses it.
ADVISORY_LOCK_ID = 0x574C5359
# After a first sync that created this many rows, refresh the planner's statistics:
# aggregate queries ran 25x slower on freshly bulk-loaded, un-ANALYZEd tables.
ANALYZE_AFTER_ROWS = 5000
PROFILE_FIELDS = {KeyKind.THUMBNAIL: "thumbnail", KeyKind.ICON: "icon", KeyKind.BANNER: "banner"}
DELETE_CHUNK = 1000
_MEDIA_FIELDS = [
    "id",
    "post_id",
    "s3_key",
    "url",
    "type",
    "size",
    "etag",
    "last_modified",
    "sort_key",
    "created_at",
    "updated_at",
]
assert [f.attname for f in WhitelabelMedia._meta.concrete_fields] == _MEDIA_FIELDS, "update _write_media"


class SyncError(Exception):
    """A sync that did not start; the message is for people."""


class SyncDisabled(SyncError):
    pass


class SyncAlreadyRunning(SyncError):
    pass


def disabled_message() -> str:
    return _("White-label sync disabled: WHITELABEL_BUCKET is not set.")


def page_size() -> int:
    return settings.WHITELABEL_PAGE_SIZE


@dataclass
class SyncCounts:
    pages: int = 0
    keys_listed: int = 0
    skipped: Counter = field(default_factory=Counter)
    creators_created: int = 0
    creators_updated: int = 0
    creators_deleted: int = 0
    posts_created: int = 0
    posts_updated: int = 0
    posts_deleted: int = 0
    media_created: int = 0
    media_updated: int = 0
    media_deleted: int = 0

    @property
    def keys_skipped(self) -> int:
        return sum(self.skipped.values())

    @property
    def rows_written(self) -> int:
        return (
            self.creators_created
            + self.creators_updated
            + self.creators_deleted
            + self.posts_created
            + self.posts_updated
            + self.posts_deleted
            + self.media_created
            + self.media_updated
            + self.media_deleted
        )

    def as_run_fields(self) -> dict:
        return {
            "pages": self.pages,
            "keys_listed": self.keys_listed,
            "keys_skipped": self.keys_skipped,
            "skipped_by_reason": dict(sorted(self.skipped.items())),
            "creators_created": self.creators_created,
            "creators_updated": self.creators_updated,
            "creators_deleted": self.creators_deleted,
            "posts_created": self.posts_created,
            "posts_updated": self.posts_updated,
            "posts_deleted": self.posts_deleted,
            "media_created": self.media_created,
            "media_updated": self.media_updated,
            "media_deleted": self.media_deleted,
            "rows_written": self.rows_written,
        }


@dataclass
class SyncResult:
    counts: SyncCounts
    seconds: float
    dry_run: bool
    run: SyncRun | None = None

    @property
    def keys_per_second(self) -> float:
        return self.counts.keys_listed / self.seconds if self.seconds else 0.0

    def summary(self) -> str:
        c = self.counts
        text = _(
            "%(mode)s: %(keys)d keys listed (%(skipped)d skipped) in %(seconds).1fs, %(rate).0f keys/s; "
            "creators +%(cc)d ~%(cu)d -%(cd)d, posts +%(pc)d ~%(pu)d -%(pd)d, media +%(mc)d ~%(mu)d -%(md)d; "
            "%(rows)d rows written."
        ) % {
            "mode": _("Dry run (nothing written)") if self.dry_run else _("Sync succeeded"),
            "keys": c.keys_listed,
            "skipped": c.keys_skipped,
            "seconds": self.seconds,
            "rate": self.keys_per_second,
            "cc": c.creators_created,
            "cu": c.creators_updated,
            "cd": c.creators_deleted,
            "pc": c.posts_created,
            "pu": c.posts_updated,
            "pd": c.posts_deleted,
            "mc": c.media_created,
            "mu": c.media_updated,
            "md": c.media_deleted,
            "rows": 0 if self.dry_run else c.rows_written,
        }
        return text


ProgressCallback = Callable[[SyncCounts, float], None]


# --------------------------------------------------------------------------- listing


def list_pages(*, client, bucket: str, prefix: str, size: int | None = None) -> Iterator[list[dict]]:
    """ListObjectsV2 pages below `prefix`: each a list of {Key, Size, ETag, LastModified}."""
    paginator = client.get_paginator("list_objects_v2")
    kwargs = {"Bucket": bucket, "PaginationConfig": {"PageSize": size or page_size()}}
    if prefix:
        kwargs["Prefix"] = prefix
    for page in paginator.paginate(**kwargs):
        yield page.get("Contents", [])


class prefetch:
    """
    Iterate `pages` in a background thread, up to `depth` items ahead, starting at once: the
    listing of page N+1 overlaps the database work on page N (and the preload before page 1).
    The producer's exception is raised in the consumer, in order. Use as a context manager.
    """

    def __init__(self, pages: Iterable, depth: int = 2):
        self._buffer: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, args=(pages,), name="whitelabel-list", daemon=True)
        self._thread.start()

    def _produce(self, pages: Iterable) -> None:
        try:
            for item in pages:
                while not self._stop.is_set():
                    try:
                        self._buffer.put(("item", item), timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if self._stop.is_set():
                    return
            self._buffer.put(("done", None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            self._buffer.put(("error", exc))

    def __iter__(self) -> Iterator:
        while True:
            kind, item = self._buffer.get()
            if kind == "item":
                yield item
            elif kind == "error":
                raise item
            else:
                return

    def close(self) -> None:
        self._stop.set()
        # Unblock a producer waiting on a full queue, then let it finish its current request.
        while self._thread.is_alive():
            try:
                self._buffer.get_nowait()
            except queue.Empty:
                self._thread.join(timeout=0.2)

    def __enter__(self) -> "prefetch":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


@contextmanager
def short_gil_switch_interval(seconds: float = 0.0005):
    """
    While the listing thread parses XML (CPU-bound), the thread doing database round trips
    waits up to the interpreter's switch interval (5 ms) to get the GIL back after each
    answer. A sync makes a few round trips per page, so a shorter interval for its duration
    shortens a first sync by a quarter or more. Process-wide, hence restored afterwards.
    """
    before = sys.getswitchinterval()
    sys.setswitchinterval(min(before, seconds))
    try:
        yield
    finally:
        sys.setswitchinterval(before)


# --------------------------------------------------------------------------- lock


@contextmanager
def exclusive_run(*, prefix: str, trigger: str):
    """Yield a new `running` SyncRun while holding the sync lock, or raise SyncAlreadyRunning."""
    now = timezone.now()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [ADVISORY_LOCK_ID])
            if not cursor.fetchone()[0]:
                raise SyncAlreadyRunning(_("Another white-label sync is running; this one exits."))
        try:
            # We hold the lock, so a `running` row is the leftover of a process that died mid-sync.
            SyncRun.objects.filter(status=SyncRun.Status.RUNNING).update(
                status=SyncRun.Status.FAILED, finished_at=now, error="Interrupted: the process running it stopped."
            )
            run = SyncRun.objects.create(prefix=prefix, trigger=trigger)
            yield run
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [ADVISORY_LOCK_ID])
        return

    # Elsewhere the lock is the row: a partial unique constraint allows one `running` run.
    stale = now - timedelta(seconds=settings.WHITELABEL_SYNC_STALE_SECONDS)
    SyncRun.objects.filter(status=SyncRun.Status.RUNNING, started_at__lt=stale).update(
        status=SyncRun.Status.FAILED, finished_at=now, error="Interrupted: no progress for too long."
    )
    try:
        with transaction.atomic():
            run = SyncRun.objects.create(prefix=prefix, trigger=trigger)
    except IntegrityError:
        raise SyncAlreadyRunning(_("Another white-label sync is running; this one exits.")) from None
    yield run


# --------------------------------------------------------------------------- the sync


@dataclass
class _CreatorState:
    id: int | None
    slug: str
    stored: dict  # {"thumbnail": key, "icon": key, "banner": key} as stored


class _Sync:
    def __init__(self, *, creator: str, dry_run: bool, run: SyncRun | None, progress: ProgressCallback | None):
        self.creator_scope = creator
        self.dry_run = dry_run
        self.run = run
        self.progress = progress
        self.counts = SyncCounts()
        self.bucket_prefix = s3.bucket_prefix()
        self.base_url = s3.public_base_url()
        self.now = timezone.now()
        self.started = time.monotonic()
        self.creators: dict[str, _CreatorState] = {}
        self.posts: dict[tuple[int, str], int] = {}
        self.seen_creator_ids: set[int] = set()
        self.seen_post_ids: set[int] = set()
        self.seen_media_ids: set[int] = set()
        self.changed_post_ids: set[int] = set()
        self.changed_creator_ids: set[int] = set()
        # dry run: things that would be created have no id; remember them by name
        self.dry_new_posts: set[tuple[str, str]] = set()  # (creator, post) a dry run would create
        self.seen_profiles: dict[str, dict] = {}  # creator -> smallest key of each profile kind seen
        self.taken_slugs: set[str] = set()
        self.seen_names: set[str] = set()  # creators with at least one key in this listing
        self.media_by_post: dict[int, dict[str, tuple]] = {}  # stored media of the last page's posts
        self.last_progress_save = time.monotonic()
        self.rewrite_urls = False  # set by preload()

    # ---- helpers

    def url(self, key: str) -> str:
        return object_url(self.base_url, key)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    # ---- per page

    def process_page(self, contents: list[dict]) -> None:
        counts = self.counts
        counts.pages += 1
        counts.keys_listed += len(contents)
        media: list[tuple] = []  # (parsed, obj)
        page_creators: set[str] = set()
        for obj in contents:
            parsed = parse_key(obj["Key"], self.bucket_prefix)
            kind = parsed.kind
            if kind is KeyKind.SKIPPED:
                counts.skipped[parsed.skip_reason.value] += 1
                continue
            if self.creator_scope and parsed.creator != self.creator_scope:
                counts.skipped["outside_prefix"] += 1
                continue
            page_creators.add(parsed.creator)
            if kind is KeyKind.MEDIA:
                media.append((parsed, obj))
            else:
                seen = self.seen_profiles.setdefault(parsed.creator, {})
                name = PROFILE_FIELDS[kind]
                # Several candidates (icon.jpg and icon.png): the smallest key wins, whatever the page order.
                if name not in seen or parsed.key < seen[name]:
                    seen[name] = parsed.key
        if page_creators:
            self.seen_names.update(page_creators)
            before = replace(counts, skipped=Counter(counts.skipped))
            try:
                self._sync_page(page_creators, media)
            except BaseException:
                # The page's transaction rolled back: the run's counts must not claim its rows.
                self.counts = before
                raise

    def _sync_page(self, page_creators: set[str], media: list[tuple]) -> None:
        """
        Read what is stored (outside any transaction), then write only what differs.

        An unchanged page costs one SELECT (of its media) and no transaction at all:
        while the listing thread parses XML, every extra round trip here is paid twice,
        once on the network and once waiting for the GIL.
        """
        creator_rows = self._creator_rows(page_creators, final=False)
        post_ids, missing_posts = self._plan_posts(media)
        media_rows = self._media_rows(media, post_ids)
        if not (creator_rows or missing_posts or media_rows):
            self._mark_seen(page_creators, post_ids)
            return
        if self.dry_run:
            self._apply_creators(creator_rows)
            self.dry_new_posts.update(missing_posts)
            self._mark_seen(page_creators, post_ids)
            return
        with transaction.atomic():
            self._apply_creators(creator_rows)
            self._write_posts(missing_posts, post_ids)
            self._write_media(media_rows, post_ids)
        self._mark_seen(page_creators, post_ids)

    def _mark_seen(self, names: Iterable[str], post_ids: dict) -> None:
        for name in names:
            pk = self.creators[name].id
            if pk is not None:
                self.seen_creator_ids.add(pk)
        self.seen_post_ids.update(pk for pk in post_ids.values() if pk is not None)

    # ---- creators

    def preload(self) -> None:
        """
        What is stored, read while the first page is listed: every creator (a few thousand rows at most,
        and all their slugs, so new ones get unique slugs without asking) and the posts in scope.
        Pages then only ask about their media.
        """
        # A changed WHITELABEL_CDN_BASE_URL (or endpoint) means every stored URL must be rewritten.
        self.rewrite_urls = (
            self._scoped(WhitelabelMedia.objects.all(), "post__creator__folder_name")
            .exclude(url__startswith=f"{self.base_url}/")
            .exists()
            or self._scoped(WhitelabelCreator.objects.all(), "folder_name")
            .exclude(
                Q(thumbnail_url="") | Q(thumbnail_url__startswith=f"{self.base_url}/"),
                Q(icon_url="") | Q(icon_url__startswith=f"{self.base_url}/"),
                Q(banner_url="") | Q(banner_url__startswith=f"{self.base_url}/"),
            )
            .exists()
        )
        rows = WhitelabelCreator.objects.order_by().values_list(
            "id", "folder_name", "slug", "thumbnail_key", "icon_key", "banner_key"
        )
        for pk, name, slug, thumb, icon, banner in rows:
            self.taken_slugs.add(slug)
            self.creators[name] = _CreatorState(
                id=pk, slug=slug, stored={"thumbnail": thumb, "icon": icon, "banner": banner}
            )
        posts = self._scoped(WhitelabelPost.objects.all(), "creator__folder_name").values_list(
            "id", "creator_id", "folder_name"
        )
        for pk, creator_id, folder in posts.iterator(chunk_size=10000):
            self.posts[(creator_id, folder)] = pk

    def _new_slug(self, name: str) -> str:
        """`slugify(name)`, or with a short hash of the name when another creator has it."""
        base = slugify(name)[:200] or "creator"
        slug = base
        digest = hashlib.sha1(name.encode()).hexdigest()
        n = 8
        while slug in self.taken_slugs:
            slug = f"{base}-{digest[:n]}"
            n += 4
        self.taken_slugs.add(slug)
        return slug

    def _desired_profile(self, state: _CreatorState | None, name: str, *, final: bool) -> dict:
        seen = self.seen_profiles.get(name, {})
        if final or state is None:
            return {k: seen.get(k, "") for k in ("thumbnail", "icon", "banner")}
        # Mid-listing, never clear: the image may still come on a later page.
        return {k: seen.get(k) or state.stored.get(k, "") for k in ("thumbnail", "icon", "banner")}

    def _creator_rows(self, names: Iterable[str], *, final: bool) -> list[WhitelabelCreator]:
        """Rows to upsert: new creators, and creators whose profile images (or URLs) changed."""
        rows = []
        for name in sorted(names):
            state = self.creators.get(name)
            if state is None:
                slug = self._new_slug(name)
                self.counts.creators_created += 1
            elif final and state.id is None:  # dry run: would be created, already counted
                continue
            else:
                slug = state.slug
            desired = self._desired_profile(state, name, final=final)
            if state is not None:
                if desired == state.stored and not self.rewrite_urls:
                    continue
                self.counts.creators_updated += 1
            row = WhitelabelCreator(folder_name=name, slug=slug, last_synced_at=self.now)
            for kind, key in desired.items():
                setattr(row, f"{kind}_key", key)
                setattr(row, f"{kind}_url", self.url(key) if key else "")
            rows.append(row)
        return rows

    def _apply_creators(self, rows: list[WhitelabelCreator]) -> None:
        if rows and not self.dry_run:
            WhitelabelCreator.objects.bulk_create(
                rows,
                update_conflicts=True,
                unique_fields=["folder_name"],
                # never `status` (an admin's choice) nor `slug` (published URLs)
                update_fields=[
                    "thumbnail_key",
                    "thumbnail_url",
                    "icon_key",
                    "icon_url",
                    "banner_key",
                    "banner_url",
                    "last_synced_at",
                    "updated_at",
                ],
            )
        for row in rows:
            self.creators[row.folder_name] = _CreatorState(
                id=row.pk,  # None in a dry run for a creator that would be created
                slug=row.slug,
                stored={"thumbnail": row.thumbnail_key, "icon": row.icon_key, "banner": row.banner_key},
            )

    # ---- posts

    def _plan_posts(self, media: list[tuple]) -> tuple[dict[tuple[str, str], int | None], list[tuple[str, str]]]:
        """(creator, post) -> stored post id for the page's posts, and the posts to create."""
        post_ids: dict[tuple[str, str], int | None] = {}
        missing: list[tuple[str, str]] = []
        for ref in {(parsed.creator, parsed.post) for parsed, _obj in media}:
            creator_name, folder = ref
            state = self.creators.get(creator_name)
            creator_id = state.id if state else None
            pk = self.posts.get((creator_id, folder)) if creator_id is not None else None
            post_ids[ref] = pk
            # All stored posts were preloaded: one not found is new (or, in a dry run, already counted).
            if pk is None and ref not in self.dry_new_posts:
                missing.append(ref)
        self.counts.posts_created += len(missing)
        return post_ids, sorted(missing)

    def _write_posts(self, missing: list[tuple[str, str]], post_ids: dict) -> None:
        if not missing:
            return
        if connection.vendor == "postgresql":
            self._insert_posts(missing, post_ids)
            return
        rows = [
            WhitelabelPost(creator_id=self.creators[c].id, folder_name=f, title=title_from_folder(f))
            for c, f in missing
        ]
        WhitelabelPost.objects.bulk_create(
            rows, update_conflicts=True, unique_fields=["creator", "folder_name"], update_fields=["title"]
        )
        for (creator_name, folder), row in zip(missing, rows, strict=True):
            self.posts[(row.creator_id, folder)] = row.pk
            post_ids[(creator_name, folder)] = row.pk
            self.changed_creator_ids.add(row.creator_id)

    def _insert_posts(self, missing: list[tuple[str, str]], post_ids: dict) -> None:
        """PostgreSQL: the same upsert as the `bulk_create` path, from three arrays, no model instances."""
        creator_ids = [self.creators[c].id for c, _f in missing]
        folders = [f for _c, f in missing]
        with connection.cursor() as cursor:
            cursor.execute(
                _UPSERT_POSTS,
                {
                    "creators": creator_ids,
                    "folders": folders,
                    "titles": [title_from_folder(f) for f in folders],
                    "now": timezone.now(),
                },
            )
            ids = {(creator_id, folder): pk for pk, creator_id, folder in cursor.fetchall()}
        for (creator_name, folder), creator_id in zip(missing, creator_ids, strict=True):
            pk = ids[(creator_id, folder)]
            self.posts[(creator_id, folder)] = pk
            post_ids[(creator_name, folder)] = pk
            self.changed_creator_ids.add(creator_id)

    # ---- media

    def _media_rows(self, media: list[tuple], post_ids: dict) -> list[tuple]:
        """(post ref, parsed, obj) of the media to upsert: new, or differing from what is stored."""
        # A key fixes its creator and post, so the media of a post not stored yet are new:
        # only the media of stored posts need comparing.
        stored = self._stored_media({pk for pk in post_ids.values() if pk is not None})
        rewrite_urls = self.rewrite_urls
        rows = []
        for parsed, obj in media:
            ref = (parsed.creator, parsed.post)
            current = stored.get(parsed.key)
            if current is not None:
                pk, old_post_id, old_type, old_size, old_etag = current
                self.seen_media_ids.add(pk)
                # The URL is a function of the key and the base URL, checked once per run.
                same = (old_post_id, old_type, old_size, old_etag) == (
                    post_ids[ref],
                    parsed.media_type,
                    int(obj.get("Size") or 0),
                    (obj.get("ETag") or "").strip('"'),
                )
                if same and not rewrite_urls:
                    continue
                self.counts.media_updated += 1
                self.changed_post_ids.add(old_post_id)
            else:
                self.counts.media_created += 1
            rows.append((ref, parsed, obj))
        return rows

    def _stored_media(self, post_ids: set[int]) -> dict[str, tuple]:
        """
        key -> (id, post_id, type, size, etag) of the stored media of `post_ids`: one query.

        Asked by post id (a hundred integers a page) rather than by key (a thousand strings
        to send). A post that straddles two pages is read once: the last page's rows are kept.
        """
        cached = {pk: self.media_by_post[pk] for pk in post_ids if pk in self.media_by_post}
        wanted = sorted(post_ids - cached.keys())
        fetched: dict[int, dict[str, tuple]] = {pk: {} for pk in wanted}
        if wanted:
            table = connection.ops.quote_name(WhitelabelMedia._meta.db_table)
            columns = "id, s3_key, post_id, type, size, etag"
            with connection.cursor() as cursor:
                if connection.vendor == "postgresql":
                    cursor.execute(f"SELECT {columns} FROM {table} WHERE post_id = ANY(%s)", [wanted])
                else:
                    cursor.execute(
                        f"SELECT {columns} FROM {table} WHERE post_id IN ({', '.join(['%s'] * len(wanted))})", wanted
                    )
                for pk, key, post_id, type_, size, etag in cursor.fetchall():
                    fetched[post_id][key] = (pk, post_id, type_, size, etag)
        self.media_by_post = {**cached, **fetched}
        result: dict[str, tuple] = {}
        for rows in self.media_by_post.values():
            result.update(rows)
        return result

    def _write_media(self, rows: list[tuple], post_ids: dict) -> None:
        if not rows:
            return
        if connection.vendor == "postgresql":
            self._copy_media(rows, post_ids)
            return
        # Positional arguments take Model.__init__'s fast path (half the cost of keywords, which
        # matters at 100,000 rows); _MEDIA_FIELDS pins the order. created_at/updated_at are
        # filled by their auto_now(_add) pre_save.
        objs = [
            WhitelabelMedia(
                None,
                post_ids[ref],
                parsed.key,
                self.url(parsed.key),
                parsed.media_type,
                int(obj.get("Size") or 0),
                (obj.get("ETag") or "").strip('"'),
                obj.get("LastModified"),
                natural_sort_key(parsed.path_in_post),
                None,
                None,
            )
            for ref, parsed, obj in rows
        ]
        WhitelabelMedia.objects.bulk_create(
            objs,
            update_conflicts=True,
            unique_fields=["s3_key"],
            update_fields=["post", "url", "type", "size", "etag", "last_modified", "sort_key", "updated_at"],
        )
        self.seen_media_ids.update(obj.pk for obj in objs)
        self.changed_post_ids.update(obj.post_id for obj in objs)

    def _copy_media(self, rows: list[tuple], post_ids: dict) -> None:
        """
        PostgreSQL: COPY the rows into the session's staging table, then one
        `INSERT … SELECT … ON CONFLICT (s3_key) DO UPDATE` that also empties the stage.

        Same rows, same columns, same conflict handling as the `bulk_create` path, without
        model instances, per-field preparation or client-side quoting of a 1,000-row
        statement: COPY rows are plain tuples, serialised by psycopg's C code.
        """
        url = self.url
        now = timezone.now()
        with connection.cursor() as cursor:
            # Django's cursor: CaptureQueriesContext (and the query-count tests) see the COPY.
            with cursor.copy(_COPY_MEDIA) as copy:
                copy.set_types(_STAGE_TYPES)
                write_row = copy.write_row
                for ref, parsed, obj in rows:
                    key = parsed.key
                    write_row(
                        (
                            post_ids[ref],
                            key,
                            url(key),
                            parsed.media_type,
                            int(obj.get("Size") or 0),
                            (obj.get("ETag") or "").strip('"'),
                            obj.get("LastModified"),
                            natural_sort_key(parsed.path_in_post),
                        )
                    )
            cursor.execute(_UPSERT_STAGED_MEDIA, {"now": now})
            written = cursor.fetchall()
        if len(written) != len(rows):  # pragma: no cover - a guard, not a branch
            raise RuntimeError(f"media upsert wrote {len(written)} rows for {len(rows)} staged")
        self.seen_media_ids.update(pk for pk, _post_id in written)
        self.changed_post_ids.update(post_id for _pk, post_id in written)

    def prepare_writes(self) -> None:
        """PostgreSQL: the session's media staging table (a temporary table, emptied by every upsert)."""
        if connection.vendor == "postgresql" and not self.dry_run:
            with connection.cursor() as cursor:
                cursor.execute(_CREATE_MEDIA_STAGE)

    def report_progress(self) -> None:
        if self.progress:
            self.progress(self.counts, self.elapsed())
        # The admin's history shows a running sync's progress; a few writes a minute at most.
        if self.run is not None and time.monotonic() - self.last_progress_save >= 5:
            SyncRun.objects.filter(pk=self.run.pk).update(**self.counts.as_run_fields())
            self.last_progress_save = time.monotonic()

    # ---- after a complete listing

    def _scoped(self, queryset, creator_path: str):
        queryset = queryset.order_by()  # the models' default ordering would add joins
        if self.creator_scope:
            return queryset.filter(**{creator_path: self.creator_scope})
        return queryset

    def finish(self) -> None:
        """Orphans, profile images, aggregates: only ever called after the listing completed."""
        # Profile images that disappeared from the bucket (never cleared mid-listing).
        self._apply_creators(self._creator_rows(self.seen_names, final=True))

        media_orphans = [
            (pk, post_id)
            for pk, post_id in self._scoped(WhitelabelMedia.objects.all(), "post__creator__folder_name")
            .values_list("id", "post_id")
            .iterator(chunk_size=5000)
            if pk not in self.seen_media_ids
        ]
        post_orphans = [
            (pk, creator_id)
            for pk, creator_id in self._scoped(WhitelabelPost.objects.all(), "creator__folder_name").values_list(
                "id", "creator_id"
            )
            if pk not in self.seen_post_ids
        ]
        creator_orphans = [
            pk
            for pk in self._scoped(WhitelabelCreator.objects.all(), "folder_name").values_list("id", flat=True)
            if pk not in self.seen_creator_ids
        ]
        if self.dry_run:
            # Exact: the media of orphan posts are unseen, so among the orphan media (same for posts).
            self.counts.media_deleted += len(media_orphans)
            self.counts.posts_deleted += len(post_orphans)
            self.counts.creators_deleted += len(creator_orphans)
            return

        deleted_posts = {pk for pk, _c in post_orphans}
        for _pk, post_id in media_orphans:
            if post_id not in deleted_posts:
                self.changed_post_ids.add(post_id)
        for _pk, creator_id in post_orphans:
            self.changed_creator_ids.add(creator_id)
        self.counts.media_deleted += self._delete(WhitelabelMedia, [pk for pk, _p in media_orphans])
        post_counts = self._delete_counted(WhitelabelPost, [pk for pk, _c in post_orphans])
        creator_counts = self._delete_counted(WhitelabelCreator, creator_orphans)
        for counts_by_model in (post_counts, creator_counts):
            self.counts.media_deleted += counts_by_model.get(WhitelabelMedia._meta.label, 0)
            self.counts.posts_deleted += counts_by_model.get(WhitelabelPost._meta.label, 0)
            self.counts.creators_deleted += counts_by_model.get(WhitelabelCreator._meta.label, 0)
        self.changed_post_ids -= deleted_posts
        self.changed_creator_ids -= set(creator_orphans)

        created = self.counts.media_created + self.counts.posts_created + self.counts.creators_created
        if connection.vendor == "postgresql" and created >= ANALYZE_AFTER_ROWS:
            with connection.cursor() as cursor:
                for model in (WhitelabelCreator, WhitelabelPost, WhitelabelMedia):
                    cursor.execute(f'ANALYZE "{model._meta.db_table}"')
        refresh_aggregates(post_ids=self.changed_post_ids, creator_ids=self.changed_creator_ids, now=self.now)

    @staticmethod
    def _delete(model, ids: list[int]) -> int:
        total = 0
        for start in range(0, len(ids), DELETE_CHUNK):
            total += model.objects.filter(pk__in=ids[start : start + DELETE_CHUNK]).delete()[0]
        return total

    @staticmethod
    def _delete_counted(model, ids: list[int]) -> Counter:
        totals: Counter = Counter()
        for start in range(0, len(ids), DELETE_CHUNK):
            _total, per_model = model.objects.filter(pk__in=ids[start : start + DELETE_CHUNK]).delete()
            totals.update(per_model)
        return totals


# --------------------------------------------------------------------------- PostgreSQL media writes

_MEDIA_TABLE = WhitelabelMedia._meta.db_table
_STAGE = "whitelabel_media_stage"
_STAGE_COLUMNS = "post_id, s3_key, url, type, size, etag, last_modified, sort_key"
_STAGE_TYPES = ["int8", "text", "text", "text", "int8", "text", "timestamptz", "text"]
# Column types copied from the media table; a temporary table lives as long as the
# session (IF NOT EXISTS: a persistent connection keeps it between syncs).
_CREATE_MEDIA_STAGE = f"""
CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGE} ON COMMIT DELETE ROWS
    AS SELECT {_STAGE_COLUMNS} FROM "{_MEDIA_TABLE}" WITH NO DATA
"""
_COPY_MEDIA = f"COPY {_STAGE} ({_STAGE_COLUMNS}) FROM STDIN (FORMAT BINARY)"
# DELETE … RETURNING empties the stage in the same statement (inside a test's or a
# caller's transaction ON COMMIT DELETE ROWS would not run between pages).
# Unconditional update, like bulk_create(update_conflicts=True): only rows that differ
# from what is stored are staged in the first place.
_UPSERT_STAGED_MEDIA = f"""
WITH staged AS (DELETE FROM {_STAGE} RETURNING {_STAGE_COLUMNS})
INSERT INTO "{_MEDIA_TABLE}" ({_STAGE_COLUMNS}, created_at, updated_at)
SELECT {_STAGE_COLUMNS}, %(now)s, %(now)s FROM staged
    ON CONFLICT (s3_key) DO UPDATE SET
       post_id = EXCLUDED.post_id, url = EXCLUDED.url, type = EXCLUDED.type, size = EXCLUDED.size,
       etag = EXCLUDED.etag, last_modified = EXCLUDED.last_modified, sort_key = EXCLUDED.sort_key,
       updated_at = EXCLUDED.updated_at
RETURNING id, post_id
"""

# bulk_create(update_conflicts=True, update_fields=["title"]) spelled out: a new post starts
# with an empty summary; a post created meanwhile only gets its title rewritten.
_UPSERT_POSTS = f"""
INSERT INTO "{WhitelabelPost._meta.db_table}"
       (creator_id, folder_name, title, media_summary, media_count, created_at, updated_at)
SELECT u.creator_id, u.folder_name, u.title, '{{}}'::jsonb, 0, %(now)s, %(now)s
  FROM unnest(%(creators)s::bigint[], %(folders)s::text[], %(titles)s::text[]) AS u(creator_id, folder_name, title)
    ON CONFLICT (creator_id, folder_name) DO UPDATE SET title = EXCLUDED.title
RETURNING id, creator_id, folder_name
"""

# --------------------------------------------------------------------------- aggregates

_PG_POST_AGGREGATES = """
UPDATE {post} AS p
   SET media_count = a.n, media_summary = a.summary, updated_at = %(now)s
  FROM (
        SELECT p2.id AS post_id,
               count(m.id) AS n,
               jsonb_build_object(
                   'images', coalesce(jsonb_agg(m.url ORDER BY m.sort_key, m.s3_key)
                                      FILTER (WHERE m.type = 'image'), '[]'::jsonb),
                   'videos', coalesce(jsonb_agg(m.url ORDER BY m.sort_key, m.s3_key)
                                      FILTER (WHERE m.type = 'video'), '[]'::jsonb)
               ) AS summary
          FROM {post} AS p2
          LEFT JOIN {media} AS m ON m.post_id = p2.id
         WHERE p2.id = ANY(%(ids)s)
         GROUP BY p2.id
       ) AS a
 WHERE p.id = a.post_id
   AND (p.media_count <> a.n OR p.media_summary <> a.summary)
"""

_PG_CREATOR_AGGREGATES = """
UPDATE {creator} AS c
   SET post_count = a.n, last_synced_at = %(now)s, updated_at = %(now)s
  FROM (
        SELECT c2.id AS creator_id, count(p.id) AS n
          FROM {creator} AS c2
          LEFT JOIN {post} AS p ON p.creator_id = c2.id
         WHERE c2.id = ANY(%(ids)s)
         GROUP BY c2.id
       ) AS a
 WHERE c.id = a.creator_id
"""


def refresh_aggregates(*, post_ids: Iterable[int], creator_ids: Iterable[int], now=None) -> None:
    """Recompute media summaries/counts of `post_ids` and post counts of `creator_ids` (and their posts' creators)."""
    now = now or timezone.now()
    post_ids = sorted(set(post_ids))
    creator_ids = set(creator_ids)
    if post_ids:
        creator_ids.update(
            WhitelabelPost.objects.filter(pk__in=post_ids).order_by().values_list("creator_id", flat=True).distinct()
        )
    creator_ids = sorted(creator_ids)
    tables = {
        "post": connection.ops.quote_name(WhitelabelPost._meta.db_table),
        "media": connection.ops.quote_name(WhitelabelMedia._meta.db_table),
        "creator": connection.ops.quote_name(WhitelabelCreator._meta.db_table),
    }
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            if post_ids:
                cursor.execute(_PG_POST_AGGREGATES.format(**tables), {"ids": post_ids, "now": now})
            if creator_ids:
                cursor.execute(_PG_CREATOR_AGGREGATES.format(**tables), {"ids": creator_ids, "now": now})
        return
    _refresh_aggregates_portable(post_ids=post_ids, creator_ids=creator_ids, now=now)


def _refresh_aggregates_portable(*, post_ids: list[int], creator_ids: list[int], now) -> None:
    """Any database: read the media of the changed posts in chunks, write only posts whose figures moved."""
    from django.db.models import Count

    for start in range(0, len(post_ids), 500):
        chunk = post_ids[start : start + 500]
        summaries = {pk: {"images": [], "videos": []} for pk in chunk}
        for post_id, type_, url in (
            WhitelabelMedia.objects.filter(post_id__in=chunk)
            .order_by("post_id", "sort_key", "s3_key")
            .values_list("post_id", "type", "url")
        ):
            summaries[post_id]["images" if type_ == "image" else "videos"].append(url)
        changed = []
        for post in WhitelabelPost.objects.filter(pk__in=chunk).only("id", "media_count", "media_summary"):
            summary = summaries[post.pk]
            count = len(summary["images"]) + len(summary["videos"])
            if post.media_count != count or post.media_summary != summary:
                post.media_count, post.media_summary, post.updated_at = count, summary, now
                changed.append(post)
        WhitelabelPost.objects.bulk_update(changed, ["media_count", "media_summary", "updated_at"])
    for start in range(0, len(creator_ids), 500):
        chunk = creator_ids[start : start + 500]
        creators = list(WhitelabelCreator.objects.filter(pk__in=chunk).annotate(n=Count("posts")).only("id"))
        for creator in creators:
            creator.post_count, creator.last_synced_at, creator.updated_at = creator.n, now, now
        WhitelabelCreator.objects.bulk_update(creators, ["post_count", "last_synced_at", "updated_at"])


# --------------------------------------------------------------------------- entry point


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
    `failed`, error text), deletes nothing, and is re-raised.
    """
    bucket = s3.bucket_name()
    if not bucket:
        raise SyncDisabled(disabled_message())
    creator = prefix.strip("/")
    list_prefix = s3.bucket_prefix() + (f"{creator}/" if creator else "")
    client = s3.get_client()

    if dry_run:
        sync = _Sync(creator=creator, dry_run=True, run=None, progress=progress)
        with (
            short_gil_switch_interval(),
            prefetch(list_pages(client=client, bucket=bucket, prefix=list_prefix)) as pages,
        ):
            sync.preload()
            for contents in pages:
                sync.process_page(contents)
                sync.report_progress()
        sync.finish()
        return SyncResult(counts=sync.counts, seconds=sync.elapsed(), dry_run=True)

    with exclusive_run(prefix=creator, trigger=trigger) as run:
        sync = _Sync(creator=creator, dry_run=False, run=run, progress=progress)
        try:
            with (
                short_gil_switch_interval(),
                prefetch(list_pages(client=client, bucket=bucket, prefix=list_prefix)) as pages,
            ):
                sync.preload()
                sync.prepare_writes()
                for contents in pages:
                    sync.process_page(contents)
                    sync.report_progress()
            with transaction.atomic():
                sync.finish()
                run.status = SyncRun.Status.SUCCEEDED
                run.finished_at = timezone.now()
                for name, value in sync.counts.as_run_fields().items():
                    setattr(run, name, value)
                run.save()
        except BaseException as exc:
            _record_failure(sync, run, exc)
            raise
    return SyncResult(counts=sync.counts, seconds=sync.elapsed(), dry_run=False, run=run)


def _record_failure(sync: _Sync, run: SyncRun, exc: BaseException) -> None:
    logger.exception("white-label sync %s failed", run.pk)
    # Pages already written stay (nothing is deleted); keep their posts' figures right.
    try:
        refresh_aggregates(post_ids=sync.changed_post_ids, creator_ids=sync.changed_creator_ids, now=sync.now)
    except Exception:  # noqa: BLE001 - the database may be what failed
        logger.exception("white-label sync %s: aggregates after failure failed too", run.pk)
    fields = sync.counts.as_run_fields()
    # The finish step was rolled back: nothing was deleted.
    fields.update(creators_deleted=0, posts_deleted=0, media_deleted=0)
    fields["rows_written"] = sum(
        fields[k]
        for k in (
            "creators_created",
            "creators_updated",
            "posts_created",
            "posts_updated",
            "media_created",
            "media_updated",
        )
    )
    try:
        SyncRun.objects.filter(pk=run.pk).update(
            status=SyncRun.Status.FAILED,
            finished_at=timezone.now(),
            error=f"{type(exc).__name__}: {exc}"[:10000],
            **fields,
        )
    except Exception:  # noqa: BLE001
        logger.exception("white-label sync %s: could not record the failure", run.pk)
