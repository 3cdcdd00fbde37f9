"""
Writing plans: one interface, one writer per run, chosen once by `writer_for`.

    PostgresWriter  COPY into a session staging table + INSERT … SELECT … ON CONFLICT for media,
                    INSERT … SELECT FROM unnest(…) ON CONFLICT for posts; may run on its own
                    thread and connection (see `pipeline`)
    PortableWriter  bulk_create(update_conflicts=True) per table (SQLite in tests), in the caller's thread
    DryRunWriter    writes nothing and reports what it would have written

A writer resolves the ids of rows the run creates itself: a plan names a new creator by its
folder and a new post by (creator, folder), and the writer remembers the ids its upserts return.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.utils import timezone

from whitelabel.keys import title_from_folder
from whitelabel.models import WhitelabelCreator, WhitelabelMedia, WhitelabelPost
from whitelabel.sync.aggregates import refresh_aggregates_portable, refresh_aggregates_postgres
from whitelabel.sync.planning import PagePlan, Ref

# After a first sync that created this many rows, refresh the planner's statistics:
# aggregate queries ran 25x slower on freshly bulk-loaded, un-ANALYZEd tables.
ANALYZE_AFTER_ROWS = 5000
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
assert [f.attname for f in WhitelabelMedia._meta.concrete_fields] == _MEDIA_FIELDS, "update the media writers"
# never `status` (an admin's choice) nor `slug` (published URLs)
_CREATOR_UPDATE_FIELDS = [
    "thumbnail_key",
    "thumbnail_url",
    "icon_key",
    "icon_url",
    "banner_key",
    "banner_url",
    "last_synced_at",
    "updated_at",
]


@dataclass
class Written:
    """The ids committed pages wrote: every creator upserted, posts created (with their creator), media."""

    creator_ids: list[int] = field(default_factory=list)
    posts: list[tuple[int, int]] = field(default_factory=list)  # (id, creator id)
    media: list[tuple[int, int]] = field(default_factory=list)  # (id, post id)


class Writer:
    """Writes plans in the calling thread's connection, one transaction a page (or a few, see `write_pages`)."""

    # Worth a thread and a connection of its own while the next pages are listed.
    pipelined = False

    def __init__(self):
        self.creator_ids: dict[str, int] = {}  # creators this writer created, by folder
        self.post_ids: dict[Ref, int] = {}  # posts this writer created, by (creator, folder)

    def prepare(self) -> None:
        """Once per run, on the connection that writes the pages."""

    def write_pages(self, plans: list[PagePlan]) -> Written:
        """
        Consecutive plans in one transaction, one statement per table for all of them (none at
        all when no plan writes anything). A creator planned twice is upserted once, as last
        planned (one upsert cannot touch a row twice); a post or a key is only ever planned once.
        """
        written = Written()
        creators = list({row.folder_name: row for plan in plans for row in plan.creators}.values())
        posts = [post for plan in plans for post in plan.posts]
        media = [row for plan in plans for row in plan.media] if len(plans) > 1 else plans[0].media
        if not (creators or posts or media):
            return written
        with transaction.atomic():
            if creators:
                written.creator_ids = self.write_creators(creators)
            if posts:
                written.posts = self.write_posts(posts)
            if media:
                written.media = self.write_media(media)
        return written

    def write_creators(self, rows: list[WhitelabelCreator]) -> list[int]:
        """A few rows a page: the same `bulk_create` upsert everywhere."""
        WhitelabelCreator.objects.bulk_create(
            rows, update_conflicts=True, unique_fields=["folder_name"], update_fields=_CREATOR_UPDATE_FIELDS
        )
        for row in rows:
            self.creator_ids[row.folder_name] = row.pk
        return [row.pk for row in rows]

    def write_posts(self, posts: list[tuple[int | None, str, str]]) -> list[tuple[int, int]]:
        raise NotImplementedError

    def write_media(self, rows: list[tuple]) -> list[tuple[int, int]]:
        raise NotImplementedError

    def _creator_id(self, creator_id: int | None, name: str) -> int:
        return creator_id if creator_id is not None else self.creator_ids[name]

    def delete_orphans(self, *, media: list[int], posts: list[int], creators: list[int]) -> Counter:
        """Delete (in chunks, cascading); returns rows deleted by model label."""
        deleted: Counter = Counter()
        for model, ids in ((WhitelabelMedia, media), (WhitelabelPost, posts), (WhitelabelCreator, creators)):
            for start in range(0, len(ids), DELETE_CHUNK):
                _total, per_model = model.objects.filter(pk__in=ids[start : start + DELETE_CHUNK]).delete()
                deleted.update(per_model)
        return deleted

    def analyze(self, rows_created: int) -> None:
        """Refresh the query planner's statistics after a big load, where that matters."""

    def refresh_aggregates(self, *, post_ids, creator_ids, now) -> None:
        refresh_aggregates_portable(post_ids=post_ids, creator_ids=creator_ids, now=now)


class PortableWriter(Writer):
    def write_posts(self, posts: list[tuple[int | None, str, str]]) -> list[tuple[int, int]]:
        rows = [
            WhitelabelPost(creator_id=self._creator_id(cid, name), folder_name=folder, title=title_from_folder(folder))
            for cid, name, folder in posts
        ]
        WhitelabelPost.objects.bulk_create(
            rows, update_conflicts=True, unique_fields=["creator", "folder_name"], update_fields=["title"]
        )
        for (_cid, name, folder), row in zip(posts, rows, strict=True):
            self.post_ids[(name, folder)] = row.pk
        return [(row.pk, row.creator_id) for row in rows]

    def write_media(self, rows: list[tuple]) -> list[tuple[int, int]]:
        # Positional arguments take Model.__init__'s fast path (half the cost of keywords);
        # _MEDIA_FIELDS pins the order. created_at/updated_at are filled by their auto_now(_add) pre_save.
        post_ids = self.post_ids
        objs = [
            WhitelabelMedia(
                None,
                post_id if post_id is not None else post_ids[ref],
                key,
                url,
                type_,
                size,
                etag,
                last_modified,
                sort_key,
                None,
                None,
            )
            for post_id, ref, key, url, type_, size, etag, last_modified, sort_key in rows
        ]
        WhitelabelMedia.objects.bulk_create(
            objs,
            update_conflicts=True,
            unique_fields=["s3_key"],
            update_fields=["post", "url", "type", "size", "etag", "last_modified", "sort_key", "updated_at"],
        )
        return [(obj.pk, obj.post_id) for obj in objs]


class PostgresWriter(Writer):
    pipelined = True

    def prepare(self) -> None:
        """The session's media staging table (a temporary table, emptied by every upsert)."""
        with connection.cursor() as cursor:
            cursor.execute(_CREATE_MEDIA_STAGE)

    def write_posts(self, posts: list[tuple[int | None, str, str]]) -> list[tuple[int, int]]:
        """The same upsert as the `bulk_create` path, from three arrays, no model instances."""
        creator_ids = [self._creator_id(cid, name) for cid, name, _folder in posts]
        folders = [folder for _cid, _name, folder in posts]
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
        written = []
        for (_cid, name, folder), creator_id in zip(posts, creator_ids, strict=True):
            pk = ids[(creator_id, folder)]
            self.post_ids[(name, folder)] = pk
            written.append((pk, creator_id))
        return written

    def write_media(self, rows: list[tuple]) -> list[tuple[int, int]]:
        """
        COPY the rows into the session's staging table, then one
        `INSERT … SELECT … ON CONFLICT (s3_key) DO UPDATE` that also empties the stage.

        Same rows, same columns, same conflict handling as the `bulk_create` path, without
        model instances, per-field preparation or client-side quoting of a 1,000-row
        statement: COPY rows are plain tuples, serialised by psycopg's C code.
        """
        post_ids = self.post_ids
        with connection.cursor() as cursor:
            # Django's cursor: CaptureQueriesContext (and the query-count tests) see the COPY.
            with cursor.copy(_COPY_MEDIA) as copy:
                copy.set_types(_STAGE_TYPES)
                write_row = copy.write_row
                for post_id, ref, *columns in rows:
                    write_row((post_id if post_id is not None else post_ids[ref], *columns))
            cursor.execute(_UPSERT_STAGED_MEDIA, {"now": timezone.now()})
            written = cursor.fetchall()
        if len(written) != len(rows):  # pragma: no cover - a guard, not a branch
            raise RuntimeError(f"media upsert wrote {len(written)} rows for {len(rows)} staged")
        return written

    def analyze(self, rows_created: int) -> None:
        if rows_created >= ANALYZE_AFTER_ROWS:
            with connection.cursor() as cursor:
                for model in (WhitelabelCreator, WhitelabelPost, WhitelabelMedia):
                    cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")

    def refresh_aggregates(self, *, post_ids, creator_ids, now) -> None:
        refresh_aggregates_postgres(post_ids=post_ids, creator_ids=creator_ids, now=now)


class DryRunWriter(Writer):
    """Writes nothing: pages are "committed" as planned, orphans counted, not deleted."""

    def write_pages(self, plans: list[PagePlan]) -> Written:
        return Written()

    def delete_orphans(self, *, media: list[int], posts: list[int], creators: list[int]) -> Counter:
        # Exact: the media of orphan posts are unseen, so among the orphan media (same for posts).
        return Counter(
            {
                WhitelabelMedia._meta.label: len(media),
                WhitelabelPost._meta.label: len(posts),
                WhitelabelCreator._meta.label: len(creators),
            }
        )

    def refresh_aggregates(self, *, post_ids, creator_ids, now) -> None:
        pass


def writer_for(*, dry_run: bool) -> Writer:
    """The one place the database vendor (and a dry run) choose how a sync writes."""
    if dry_run:
        return DryRunWriter()
    if connection.vendor == "postgresql":
        return PostgresWriter()
    return PortableWriter()


# --------------------------------------------------------------------------- PostgreSQL statements

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
