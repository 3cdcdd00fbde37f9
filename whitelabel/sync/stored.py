"""What the staging tables hold, read for the planner: the preload, a page's stored media, the orphans."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import Q

from whitelabel.models import WhitelabelCreator, WhitelabelMedia, WhitelabelPost


@dataclass
class CreatorState:
    id: int | None  # None: created by this run (the writer knows its id)
    slug: str
    stored: dict  # {"thumbnail": key, "icon": key, "banner": key} as stored (or as this run writes it)


@dataclass
class Snapshot:
    """What is stored when the sync starts, by name: the planner never needs ids the writer produces."""

    rewrite_urls: bool = False
    creators: dict[str, CreatorState] = field(default_factory=dict)
    posts: dict[tuple[str, str], int] = field(default_factory=dict)  # (creator, folder) -> post id


def scoped(queryset, creator_path: str, scope: str):
    queryset = queryset.order_by()  # the models' default ordering would add joins
    if scope:
        return queryset.filter(**{creator_path: scope})
    return queryset


def preload(*, scope: str, base_url: str) -> Snapshot:
    """
    Every creator (a few thousand rows at most, and all their slugs, so new ones get unique
    slugs without asking) and the posts in scope: three queries, read while page 1 is listed.
    """
    # A changed WHITELABEL_CDN_BASE_URL (or endpoint) means every stored URL must be rewritten.
    rewrite_urls = (
        scoped(WhitelabelMedia.objects.all(), "post__creator__folder_name", scope)
        .exclude(url__startswith=f"{base_url}/")
        .exists()
        or scoped(WhitelabelCreator.objects.all(), "folder_name", scope)
        .exclude(
            Q(thumbnail_url="") | Q(thumbnail_url__startswith=f"{base_url}/"),
            Q(icon_url="") | Q(icon_url__startswith=f"{base_url}/"),
            Q(banner_url="") | Q(banner_url__startswith=f"{base_url}/"),
        )
        .exists()
    )
    snapshot = Snapshot(rewrite_urls=rewrite_urls)
    names: dict[int, str] = {}
    rows = WhitelabelCreator.objects.order_by().values_list(
        "id", "folder_name", "slug", "thumbnail_key", "icon_key", "banner_key"
    )
    for pk, name, slug, thumb, icon, banner in rows:
        names[pk] = name
        snapshot.creators[name] = CreatorState(
            id=pk, slug=slug, stored={"thumbnail": thumb, "icon": icon, "banner": banner}
        )
    posts = scoped(WhitelabelPost.objects.all(), "creator__folder_name", scope).values_list(
        "id", "creator_id", "folder_name"
    )
    for pk, creator_id, folder in posts.iterator(chunk_size=10000):
        snapshot.posts[(names[creator_id], folder)] = pk
    return snapshot


_MEDIA_OF_POSTS = "SELECT id, s3_key, post_id, type, size, etag FROM {table} WHERE post_id {condition}"


def media_reader() -> Callable[[list[int]], dict[int, dict[str, tuple]]]:
    """
    The reader of the stored media of posts for this connection's database, chosen once a run.
    Asked by post id (a hundred integers a page; asking by key would send a thousand strings):
    on PostgreSQL as one array parameter (one placeholder to parse, one statement text whatever
    the count), elsewhere as an IN list.
    """
    table = connection.ops.quote_name(WhitelabelMedia._meta.db_table)
    if connection.vendor == "postgresql":
        sql = _MEDIA_OF_POSTS.format(table=table, condition="= ANY(%s)")
        return lambda post_ids: _media_of_posts(sql, [post_ids], post_ids)
    return lambda post_ids: _media_of_posts(
        _MEDIA_OF_POSTS.format(table=table, condition=f"IN ({', '.join(['%s'] * len(post_ids))})"), post_ids, post_ids
    )


def _media_of_posts(sql: str, params: list, post_ids: list[int]) -> dict[int, dict[str, tuple]]:
    """post id -> {key: (id, post_id, type, size, etag)} of the stored media of `post_ids`: one query."""
    fetched: dict[int, dict[str, tuple]] = {pk: {} for pk in post_ids}
    if post_ids:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            for pk, key, post_id, type_, size, etag in cursor.fetchall():
                fetched[post_id][key] = (pk, post_id, type_, size, etag)
    return fetched


def orphans(
    *, scope: str, seen_media: set[int], seen_posts: set[int], seen_creators: set[int]
) -> tuple[list[tuple[int, int]], list[tuple[int, int]], list[int]]:
    """(id, post id) of unseen media, (id, creator id) of unseen posts, ids of unseen creators, in scope."""
    media = _unseen(
        scoped(WhitelabelMedia.objects.all(), "post__creator__folder_name", scope), ("id", "post_id"), seen_media
    )
    posts = _unseen(
        scoped(WhitelabelPost.objects.all(), "creator__folder_name", scope), ("id", "creator_id"), seen_posts
    )
    creators = _unseen(scoped(WhitelabelCreator.objects.all(), "folder_name", scope), ("id",), seen_creators)
    return media, posts, [pk for (pk,) in creators]


def _unseen(queryset, columns: tuple[str, ...], seen: set[int]) -> list[tuple]:
    """
    The rows of `queryset` whose id is not in `seen`. The ids seen are stored rows in scope (read
    or written by this run), so as many rows as ids seen means no orphan: one count instead of
    reading every id (100,000 media) when nothing vanished from the bucket. (A row deleted by
    someone else meanwhile could hide an orphan until the next sync.)
    """
    if queryset.count() <= len(seen):
        return []
    return [row for row in queryset.values_list(*columns).iterator(chunk_size=5000) if row[0] not in seen]


def ids(rows: Iterable[tuple]) -> list[int]:
    return [row[0] for row in rows]
