"""
Reads of the catalog for the API and the site pages.

Each selector returns a lazy queryset (or one object) whose rows are what a
visitor may see: published creators, their published posts. `media_for`
answers the paywall question for one post or a page of posts in a constant
number of queries: the access check (one query, unless the caller already
knows) and, with access, one query for the media of every post together.
"""

import json
import logging
from collections.abc import Iterable

from django.conf import settings
from django.db import connection
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django.urls import reverse

from billing.access import user_has_access
from catalog import signing
from catalog.models import Creator, Media, Post
from catalog.storage import PrivateFileSystemStorage

logger = logging.getLogger(__name__)

CREATOR_LIST_FIELDS = (
    "id",
    "name",
    "slug",
    "icon",
    "banner",
    "thumbnail",
    "source_icon_url",
    "source_banner_url",
    "source_thumbnail_url",
    "post_count",
)


def list_creators(*, search: str = "") -> QuerySet[Creator]:
    """Published creators, most posts first (then by name); `search` matches the name."""
    qs = Creator.objects.filter(status=Creator.Status.PUBLISHED).order_by("-post_count", "name", "id")
    search = (search or "").strip()
    if search:
        qs = qs.filter(name__icontains=search)
    return qs


def list_featured_creators() -> QuerySet[Creator]:
    """Published creators marked featured, in the admins' order."""
    return Creator.objects.filter(status=Creator.Status.PUBLISHED, is_featured=True).order_by(
        "featured_order", "name", "id"
    )


def get_creator(slug: str) -> Creator:
    """A published creator by slug; Http404 otherwise (hidden ones included)."""
    return get_object_or_404(Creator.objects.filter(status=Creator.Status.PUBLISHED), slug=slug)


def list_posts(creator: Creator) -> QuerySet[Post]:
    """The creator's published posts, newest first."""
    return (
        Post.objects.filter(creator=creator, status=Post.Status.PUBLISHED)
        .order_by("-published_at", "-id")
        .only("id", "creator_id", "title", "published_at", "preview")
    )


def list_posts_by_slug(slug: str) -> QuerySet[Post]:
    """`list_posts` of the published creator with this slug, each post carrying its creator (one query)."""
    return (
        Post.objects.filter(creator__slug=slug, creator__status=Creator.Status.PUBLISHED, status=Post.Status.PUBLISHED)
        .select_related("creator")
        .order_by("-published_at", "-id")
        .only("id", "creator_id", "title", "published_at", "preview", "creator__id", "creator__post_count")
    )


def post_page_with_media(slug: str, *, offset: int, limit: int, request=None) -> tuple[int | None, list[dict]]:
    """
    For viewers with access: one page of the creator's posts with every media
    URL, in ONE query (the page as a subquery, its media LEFT JOINed).
    Returns (the creator's post count or None when the page is empty, rows of
    {id, title, published_at, media: [{type, url}], locked: False}).
    """
    if connection.vendor == "postgresql":
        return _post_page_with_media_aggregated(slug, offset=offset, limit=limit, request=request)
    page_ids = list_posts_by_slug(slug).values("id")[offset : offset + limit]
    rows = list(
        Post.objects.filter(id__in=page_ids)
        .order_by("-published_at", "-id", "media__position", "media__id")
        .values_list(
            "id", "title", "published_at", "creator__post_count", "media__id", "media__type", "media__key", "media__file"
        )
    )
    if not rows:
        return None, []
    urls = _urls_for_rows([(row[4], row[6], row[7]) for row in rows if row[4] is not None], request)
    posts: dict[int, dict] = {}
    for post_id, title, published_at, _, media_id, kind, _, _ in rows:
        post = posts.get(post_id)
        if post is None:
            post = posts[post_id] = {
                "id": post_id,
                "title": title,
                "published_at": published_at,
                "media": [],
                "locked": False,
            }
        url = urls.get(media_id) if media_id is not None else None
        if url:
            post["media"].append({"type": kind, "url": url})
    return rows[0][3], list(posts.values())


_PAGE_WITH_MEDIA_SQL = """
SELECT p.id, p.title, p.published_at, c.post_count,
       (SELECT json_agg(json_build_array(m.id, m.type, m.key, m.file) ORDER BY m.position, m.id)::text
          FROM {media} m WHERE m.post_id = p.id)
  FROM {post} p JOIN {creator} c ON c.id = p.creator_id
 WHERE c.slug = %s AND c.status = %s AND p.status = %s
 ORDER BY p.published_at DESC, p.id DESC
 LIMIT %s OFFSET %s
"""


def _post_page_with_media_aggregated(slug: str, *, offset: int, limit: int, request) -> tuple[int | None, list[dict]]:
    """
    PostgreSQL: the same page as `post_page_with_media`, one row per post with
    its media aggregated to JSON (ordered by position): 20 rows and 20
    json.loads instead of 200 rows, and hand-written SQL because compiling the
    equivalent ORM query cost more CPU than running it (docs/catalog.md).
    """
    sql = _PAGE_WITH_MEDIA_SQL.format(
        media=Media._meta.db_table, post=Post._meta.db_table, creator=Creator._meta.db_table
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [slug, Creator.Status.PUBLISHED.value, Post.Status.PUBLISHED.value, limit, offset])
        posts = cursor.fetchall()
    if not posts:
        return None, []
    media_by_post = {post_id: json.loads(media) if media else [] for post_id, _, _, _, media in posts}
    urls = _urls_for_rows(
        [(media_id, key, file_name) for items in media_by_post.values() for media_id, _, key, file_name in items],
        request,
    )
    rows = []
    for post_id, title, published_at, _, _ in posts:
        media = []
        for media_id, kind, _, _ in media_by_post[post_id]:
            url = urls.get(media_id)
            if url:
                media.append({"type": kind, "url": url})
        rows.append({"id": post_id, "title": title, "published_at": published_at, "media": media, "locked": False})
    return posts[0][3], rows


_LOCKED_PAGE_SQL = """
SELECT p.id, p.title, p.published_at, c.post_count, p.preview
  FROM {post} p JOIN {creator} c ON c.id = p.creator_id
 WHERE c.slug = %s AND c.status = %s AND p.status = %s
 ORDER BY p.published_at DESC, p.id DESC
 LIMIT %s OFFSET %s
"""


def locked_post_page(slug: str, *, offset: int, limit: int, request=None) -> tuple[int | None, list[dict]]:
    """
    For viewers without access: one page of the creator's posts, each with its
    public preview only and `locked: True`, in one query. Returns (the
    creator's post count or None when the page is empty, rows).
    """
    if connection.vendor == "postgresql":
        # Hand-written for the same reason as the subscriber page: compiling the ORM query costs more than running it.
        sql = _LOCKED_PAGE_SQL.format(post=Post._meta.db_table, creator=Creator._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(sql, [slug, Creator.Status.PUBLISHED.value, Post.Status.PUBLISHED.value, limit, offset])
            page = cursor.fetchall()
    else:
        page = list(
            list_posts_by_slug(slug).values_list("id", "title", "published_at", "creator__post_count", "preview")[
                offset : offset + limit
            ]
        )
    if not page:
        return None, []
    storage = Post._meta.get_field("preview").storage
    image = Media.Type.IMAGE.value
    rows = [
        {
            "id": post_id,
            "title": title,
            "published_at": published_at,
            "media": [{"type": image, "url": _absolute(storage.url(preview), request)}] if preview else [],
            "locked": True,
        }
        for post_id, title, published_at, _, preview in page
    ]
    return page[0][3], rows


def get_post(post_id: int) -> Post:
    """A published post of a published creator; Http404 otherwise."""
    return get_object_or_404(
        Post.objects.select_related("creator").filter(
            status=Post.Status.PUBLISHED, creator__status=Creator.Status.PUBLISHED
        ),
        pk=post_id,
    )


# ---------------------------------------------------------------------------
# The paywall
# ---------------------------------------------------------------------------
def _absolute(url: str, request) -> str:
    if request is not None and url and url.startswith("/"):
        return request.build_absolute_uri(url)
    return url


def media_urls(items: list[Media], request=None) -> dict[int, str]:
    """{media id: URL} for media the caller may see: presigned, or the local access-checked view."""
    return _urls_for_rows([(item.pk, item.key, item.file.name) for item in items], request)


def _urls_for_rows(rows: list[tuple[int, str | None, str]], request) -> dict[int, str]:
    """
    {media id: URL} from (id, white-label key, uploaded file name) rows: plain
    tuples, because a page holds up to 200 media and model instances would
    cost more than signing them.
    """
    urls: dict[int, str] = {}
    whitelabel: list[tuple[int, str]] = []
    uploads: list[tuple[int, str]] = []
    file_storage = Media._meta.get_field("file").storage
    local = isinstance(file_storage, PrivateFileSystemStorage)
    for pk, key, file_name in rows:
        if key:
            whitelabel.append((pk, key))  # the full object key, as listed by the sync
        elif local:
            # Local development: no bucket to sign for; the view checks access on every hit.
            urls[pk] = _absolute(reverse("catalog_api:media-file", args=[pk]), request)
        elif file_name:
            location = (getattr(file_storage, "location", "") or "").strip("/")
            uploads.append((pk, f"{location}/{file_name}" if location else file_name))
    if whitelabel and not settings.WHITELABEL_BUCKET:
        logger.warning("white-label media but no WHITELABEL_BUCKET: not shown", extra={"count": len(whitelabel)})
        whitelabel = []
    for bucket, pairs in ((settings.WHITELABEL_BUCKET, whitelabel), (settings.AWS_STORAGE_BUCKET_NAME, uploads)):
        if pairs:
            signed = signing.presign_many(bucket, [key for _, key in pairs])
            for pk, key in pairs:
                urls[pk] = signed[key]
    return urls


def preview_media(post: Post, request=None) -> list[dict]:
    """What anyone may see of a post: its public preview image, if it has one."""
    if not post.preview:
        return []
    return [{"type": Media.Type.IMAGE.value, "url": _absolute(post.preview.url, request)}]


def media_for(post_or_posts: Post | Iterable[Post], user, *, has_access: bool | None = None, request=None):
    """
    The media `user` may see. For one post: `{"locked": bool, "media": [{type, url}]}`;
    for several: `{post.id: {...}}`. With access every media URL is presigned
    (or, on local storage, the access-checked file view); without, `locked` is
    true and the only entry is the post's public preview: no signed URL, no key.
    Pass `has_access` when already known to save its query.
    """
    single = isinstance(post_or_posts, Post)
    posts = [post_or_posts] if single else list(post_or_posts)
    if has_access is None:
        has_access = user_has_access(user)

    result: dict[int, dict] = {}
    if not has_access:
        for post in posts:
            result[post.pk] = {"locked": True, "media": preview_media(post, request)}
    else:
        rows = list(
            Media.objects.filter(post_id__in=[post.pk for post in posts])
            .order_by("post_id", "position", "id")
            .values_list("id", "post_id", "type", "key", "file")
        )
        urls = _urls_for_rows([(pk, key, file_name) for pk, _, _, key, file_name in rows], request)
        for post in posts:
            result[post.pk] = {"locked": False, "media": []}
        for pk, post_id, kind, _, _ in rows:
            url = urls.get(pk)
            if url:
                result[post_id]["media"].append({"type": kind, "url": url})
    return result[posts[0].pk] if single else result
