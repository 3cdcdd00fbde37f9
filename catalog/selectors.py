"""
Reads of the catalog for the API and the site pages.

Each selector returns a lazy queryset (or one object) whose rows are what a
visitor may see: published creators, their published posts. `media_for`
answers the paywall question for one post or a page of posts in a constant
number of queries: the access check (one query, unless the caller already
knows) and, with access, one query for the media of every post together.
"""

import logging
from collections.abc import Iterable

from django.conf import settings
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django.urls import reverse

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
    urls: dict[int, str] = {}
    by_bucket: dict[str, list[Media]] = {}
    for item in items:
        if item.key:
            bucket = settings.WHITELABEL_BUCKET
            if not bucket:
                logger.warning("white-label media without WHITELABEL_BUCKET", extra={"media_id": item.pk})
                continue
            by_bucket.setdefault(bucket, []).append(item)
        elif isinstance(item.file.storage, PrivateFileSystemStorage):
            # Local development: no bucket to sign for; the view checks access on every hit.
            urls[item.pk] = _absolute(reverse("catalog_api:media-file", args=[item.pk]), request)
        else:
            by_bucket.setdefault(settings.AWS_STORAGE_BUCKET_NAME, []).append(item)
    for bucket, bucket_items in by_bucket.items():
        keys = {item.pk: _object_key(item) for item in bucket_items}
        signed = signing.presign_many(bucket, keys.values())
        for pk, key in keys.items():
            urls[pk] = signed[key]
    return urls


def _object_key(item: Media) -> str:
    if item.key:
        return item.key  # the full object key, as listed by the sync
    location = getattr(item.file.storage, "location", "") or ""
    return f"{location.strip('/')}/{item.file.name}" if location else item.file.name


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
        from accounts.access import user_has_access

        has_access = user_has_access(user)

    result: dict[int, dict] = {}
    if not has_access:
        for post in posts:
            result[post.pk] = {"locked": True, "media": preview_media(post, request)}
    else:
        items = list(
            Media.objects.filter(post_id__in=[post.pk for post in posts])
            .order_by("post_id", "position", "id")
            .only("id", "post_id", "type", "key", "file")
        )
        urls = media_urls(items, request)
        for post in posts:
            result[post.pk] = {"locked": False, "media": []}
        for item in items:
            url = urls.get(item.pk)
            if url:
                result[item.post_id]["media"].append({"type": item.type, "url": url})
    return result[posts[0].pk] if single else result
