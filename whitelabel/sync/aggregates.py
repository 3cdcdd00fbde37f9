"""Post media counts and summaries, creator post counts: recomputed set-based for what changed."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection
from django.db.models import Count

from whitelabel.models import WhitelabelCreator, WhitelabelMedia, WhitelabelPost

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


def _ids(post_ids: Iterable[int], creator_ids: Iterable[int]) -> tuple[list[int], list[int]]:
    """Sorted post ids, and sorted creator ids with the creators of those posts added."""
    post_ids = sorted(set(post_ids))
    creator_ids = set(creator_ids)
    if post_ids:
        creator_ids.update(
            WhitelabelPost.objects.filter(pk__in=post_ids).order_by().values_list("creator_id", flat=True).distinct()
        )
    return post_ids, sorted(creator_ids)


def refresh_aggregates_postgres(*, post_ids: Iterable[int], creator_ids: Iterable[int], now) -> None:
    """One `UPDATE … FROM (SELECT … GROUP BY)` per table; posts whose figures did not move are not written."""
    post_ids, creator_ids = _ids(post_ids, creator_ids)
    tables = {
        "post": connection.ops.quote_name(WhitelabelPost._meta.db_table),
        "media": connection.ops.quote_name(WhitelabelMedia._meta.db_table),
        "creator": connection.ops.quote_name(WhitelabelCreator._meta.db_table),
    }
    with connection.cursor() as cursor:
        if post_ids:
            cursor.execute(_PG_POST_AGGREGATES.format(**tables), {"ids": post_ids, "now": now})
        if creator_ids:
            cursor.execute(_PG_CREATOR_AGGREGATES.format(**tables), {"ids": creator_ids, "now": now})


def refresh_aggregates_portable(*, post_ids: Iterable[int], creator_ids: Iterable[int], now) -> None:
    """Any database: read the media of the changed posts in chunks, write only posts whose figures moved."""
    post_ids, creator_ids = _ids(post_ids, creator_ids)
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
