"""
Publishing: copy white-label staging rows into the catalog.

An idempotent, set-based upsert (a fixed number of queries per batch of
rows, never one per post). Each step reads what the catalog already holds,
compares it with staging, and writes only what differs, so publishing an
unchanged creator twice writes nothing at all.

Identity is the bucket's, not the staging ids: a creator is its folder, a
post is (creator, folder), a media item is its key. Staging rows deleted and
recreated by a sync therefore re-link to the same catalog rows.

Rules:
- New staging creators/posts/media appear in the catalog (published).
- What admins edit in the catalog (a creator's name, slug, description,
  status; a post's title, status) is not overwritten by a later publish.
- A post whose folder left the bucket is *hidden*, never deleted (someone
  may be looking at it); if it comes back, it is shown again. Posts hidden by
  an admin stay hidden.
- A media item whose object left the bucket is deleted: there is nothing
  left to show. Media of a hidden post are kept.
- With `--all`, a catalog creator whose folder left the bucket is hidden.
- The staging creator is marked `active`.
"""

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields

from celery import shared_task
from django.db import transaction
from django.db.models import Count, Max, Q
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from catalog.models import Creator, Media, Post
from catalog.page_cache import bump_catalog_version
from catalog.services.previews import generate_previews_task
from config.tasks import enqueue
from whitelabel.models import WhitelabelCreator, WhitelabelMedia, WhitelabelPost

logger = logging.getLogger(__name__)

BATCH_SIZE = 1000


@dataclass
class PublishResult:
    creators: int = 0
    creators_created: int = 0
    creators_updated: int = 0
    creators_hidden: int = 0
    posts_created: int = 0
    posts_updated: int = 0
    posts_hidden: int = 0
    media_created: int = 0
    media_updated: int = 0
    media_deleted: int = 0
    new_post_ids: list[int] | None = None

    @property
    def changed(self) -> bool:
        return any(
            getattr(self, f.name) for f in fields(self) if f.name not in {"creators", "new_post_ids"}
        )

    def summary(self) -> str:
        return (
            f"{self.creators} creators ({self.creators_created} new, {self.creators_updated} updated, "
            f"{self.creators_hidden} hidden), posts: {self.posts_created} new, {self.posts_updated} updated, "
            f"{self.posts_hidden} hidden; media: {self.media_created} new, {self.media_updated} updated, "
            f"{self.media_deleted} deleted"
        )


class PublishError(Exception):
    pass


def _chunks(items: list, size: int = BATCH_SIZE) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@transaction.atomic
def publish_whitelabel(
    *,
    folder_names: list[str] | None = None,
    publish_all: bool = False,
    now=None,
    progress: Callable[[str], None] | None = None,
) -> PublishResult:
    """
    Publish the given staging creators (by folder name or slug), or with
    `publish_all` every staging creator not marked hidden. Returns counts.
    New posts get a preview generated after commit (previews.generate_previews_task).
    """
    if not publish_all and not folder_names:
        raise PublishError(_("Name at least one creator, or publish all."))
    now = now or timezone.now()
    say = progress or (lambda message: None)

    # Lock the staging creators (in pk order) so two publishes of the same
    # creator run one after the other instead of racing on the same rows.
    staging_qs = WhitelabelCreator.objects.select_for_update().order_by("pk")
    if publish_all:
        staging_qs = staging_qs.exclude(status=WhitelabelCreator.Status.HIDDEN)
    else:
        staging_qs = staging_qs.filter(Q(folder_name__in=folder_names) | Q(slug__in=folder_names))
    staging = list(staging_qs)
    if not publish_all:
        known = {c.folder_name for c in staging} | {c.slug for c in staging}
        missing = [name for name in folder_names if name not in known]
        if missing:
            raise PublishError(_("Unknown white-label creator(s): %(names)s") % {"names": ", ".join(missing)})

    result = PublishResult(creators=len(staging))
    creator_ids = _publish_creators(staging, result)
    if publish_all:
        _hide_vanished_creators(result)
    say(f"{result.creators} creators ({result.creators_created} new)")
    post_map = _publish_posts(staging, creator_ids, now, result)
    say(f"posts: {result.posts_created} new, {result.posts_updated} updated, {result.posts_hidden} hidden")
    _publish_media(post_map, result)
    say(f"media: {result.media_created} new, {result.media_updated} updated, {result.media_deleted} deleted")
    refresh_post_counts(creator_ids=list(creator_ids.values()))
    to_activate = [c.pk for c in staging if c.status != WhitelabelCreator.Status.ACTIVE]
    if to_activate:
        WhitelabelCreator.objects.filter(pk__in=to_activate).update(status=WhitelabelCreator.Status.ACTIVE)

    bump_catalog_version()
    if result.new_post_ids:
        new_ids = list(result.new_post_ids)
        transaction.on_commit(lambda: _enqueue_previews(new_ids))
    logger.info("whitelabel published", extra={"summary": result.summary()})
    return result


def _enqueue_previews(post_ids: list[int]) -> None:
    for chunk in _chunks(post_ids, 500):
        enqueue(generate_previews_task, post_ids=chunk)


# ---------------------------------------------------------------------------
# Creators
# ---------------------------------------------------------------------------
def _publish_creators(staging: list[WhitelabelCreator], result: PublishResult) -> dict[int, int]:
    """Upsert one catalog creator per staging creator; returns {staging id: catalog id}."""
    folders = [c.folder_name for c in staging]
    existing = {
        row.source_folder: row
        for chunk in _chunks(folders)
        for row in Creator.objects.filter(source_folder__in=chunk).only(
            "id", "source_folder", "source_id", "source_icon_url", "source_banner_url", "source_thumbnail_url"
        )
    }
    # Slugs come from staging but must not collide with hand-made creators.
    wanted_slugs = [c.slug or slugify(c.folder_name)[:240] or "creator" for c in staging]
    taken = set()
    for chunk in _chunks(wanted_slugs):
        taken.update(Creator.objects.filter(slug__in=chunk).exclude(source_folder__in=folders).values_list("slug", flat=True))

    to_create, to_update = [], []
    # Named once, outside the loop: with nothing staged the loop never runs (publish --all on an empty bucket).
    source_fields = ["source_id", "source_icon_url", "source_banner_url", "source_thumbnail_url"]
    for wl, slug in zip(staging, wanted_slugs, strict=True):
        current = existing.get(wl.folder_name)
        values = {
            "source_id": wl.pk,
            "source_icon_url": wl.icon_url,
            "source_banner_url": wl.banner_url,
            "source_thumbnail_url": wl.thumbnail_url,
        }
        if current is None:
            slug = _free_slug(slug, taken)
            taken.add(slug)
            to_create.append(Creator(name=wl.folder_name[:255], slug=slug, source_folder=wl.folder_name, **values))
        elif any(getattr(current, name) != value for name, value in values.items()):
            for name, value in values.items():
                setattr(current, name, value)
            to_update.append(current)

    Creator.objects.bulk_create(to_create, batch_size=BATCH_SIZE)
    Creator.objects.bulk_update(to_update, source_fields, batch_size=BATCH_SIZE)
    result.creators_created += len(to_create)
    result.creators_updated += len(to_update)
    return {
        source_id: pk
        for chunk in _chunks(folders)
        for pk, source_id in Creator.objects.filter(source_folder__in=chunk).values_list("id", "source_id")
    }


def _free_slug(slug: str, taken: set[str]) -> str:
    candidate, n = slug, 2
    while candidate in taken:
        candidate = f"{slug}-{n}"
        n += 1
    return candidate


def _hide_vanished_creators(result: PublishResult) -> None:
    """Creators published from folders that left the bucket: hidden, with their white-label posts."""
    vanished = list(
        Creator.objects.filter(source_folder__isnull=False, status=Creator.Status.PUBLISHED)
        .exclude(source_folder__in=WhitelabelCreator.objects.values("folder_name"))
        .values_list("id", flat=True)
    )
    if not vanished:
        return
    result.creators_hidden += Creator.objects.filter(pk__in=vanished).update(status=Creator.Status.HIDDEN)
    result.posts_hidden += Post.objects.filter(
        creator_id__in=vanished, source_folder__isnull=False, status=Post.Status.PUBLISHED
    ).update(status=Post.Status.HIDDEN, removed_from_source=True)


# ---------------------------------------------------------------------------
# Posts
# ---------------------------------------------------------------------------
def _publish_posts(
    staging: list[WhitelabelCreator], creator_ids: dict[int, int], now, result: PublishResult
) -> dict[int, int]:
    """Upsert posts; hide the ones gone from staging. Returns {staging post id: catalog post id}."""
    staging_ids = [c.pk for c in staging]
    staged = []
    for chunk in _chunks(staging_ids):
        staged.extend(
            WhitelabelPost.objects.filter(creator_id__in=chunk)
            .annotate(uploaded_at=Max("media__last_modified"))
            .values_list("id", "creator_id", "folder_name", "title", "uploaded_at", "created_at")
        )
    catalog_creator_ids = list(creator_ids.values())
    existing = {}
    for chunk in _chunks(catalog_creator_ids):
        for post in Post.objects.filter(creator_id__in=chunk, source_folder__isnull=False).only(
            "id", "creator_id", "source_folder", "source_id", "status", "removed_from_source"
        ):
            existing[(post.creator_id, post.source_folder)] = post

    to_create, to_update, seen = [], [], set()
    for staged_id, staged_creator, folder, title, uploaded_at, created_at in staged:
        key = (creator_ids[staged_creator], folder)
        seen.add(key)
        current = existing.get(key)
        if current is None:
            to_create.append(
                Post(
                    creator_id=key[0],
                    source_folder=folder,
                    source_id=staged_id,
                    title=title or folder,
                    published_at=uploaded_at or created_at or now,
                )
            )
            continue
        changed = False
        if current.source_id != staged_id:
            current.source_id = staged_id
            changed = True
        if current.removed_from_source:
            # Back in the bucket: show it again (unless an admin had hidden it, which never sets the flag).
            current.removed_from_source = False
            current.status = Post.Status.PUBLISHED
            changed = True
        if changed:
            to_update.append(current)

    gone = [
        post.pk
        for key, post in existing.items()
        if key not in seen and post.status == Post.Status.PUBLISHED
    ]
    Post.objects.bulk_create(to_create, batch_size=BATCH_SIZE)
    Post.objects.bulk_update(to_update, ["source_id", "status", "removed_from_source"], batch_size=BATCH_SIZE)
    for chunk in _chunks(gone):
        result.posts_hidden += Post.objects.filter(pk__in=chunk, status=Post.Status.PUBLISHED).update(
            status=Post.Status.HIDDEN, removed_from_source=True
        )
    result.posts_created += len(to_create)
    result.posts_updated += len(to_update)

    post_map = {}
    staged_ids = [row[0] for row in staged]
    for chunk in _chunks(staged_ids):
        post_map.update(Post.objects.filter(source_id__in=chunk).values_list("source_id", "id"))
    created_keys = {(p.creator_id, p.source_folder) for p in to_create}
    if created_keys:
        result.new_post_ids = [
            post_map[row[0]] for row in staged if (creator_ids[row[1]], row[2]) in created_keys
        ]
    return post_map


# ---------------------------------------------------------------------------
# Media
# ---------------------------------------------------------------------------
def _publish_media(post_map: dict[int, int], result: PublishResult) -> None:
    staged_post_ids = list(post_map)
    staged = []
    for chunk in _chunks(staged_post_ids):
        staged.extend(
            WhitelabelMedia.objects.filter(post_id__in=chunk)
            .order_by("post_id", "sort_key", "s3_key")
            .values_list("id", "post_id", "s3_key", "type")
        )
    catalog_post_ids = list(post_map.values())
    existing = {}
    for chunk in _chunks(catalog_post_ids):
        for item in Media.objects.filter(post_id__in=chunk, key__isnull=False).only(
            "id", "post_id", "key", "type", "position", "source_id"
        ):
            existing[item.key] = item

    to_create, to_update, seen = [], [], set()
    position, last_post = 0, None
    for staged_id, staged_post, key, kind in staged:
        position = position + 1 if staged_post == last_post else 0
        last_post = staged_post
        seen.add(key)
        values = {"post_id": post_map[staged_post], "type": kind, "position": position, "source_id": staged_id}
        current = existing.get(key)
        if current is None:
            to_create.append(Media(key=key, **values))
        elif any(getattr(current, name) != value for name, value in values.items()):
            for name, value in values.items():
                setattr(current, name, value)
            to_update.append(current)

    # Keys may also exist on posts outside this publish (a folder renamed):
    # upsert on the unique key rather than insert.
    Media.objects.bulk_create(
        to_create,
        batch_size=BATCH_SIZE,
        update_conflicts=True,
        unique_fields=["key"],
        update_fields=["post", "type", "position", "source"],
    )
    Media.objects.bulk_update(to_update, ["post_id", "type", "position", "source_id"], batch_size=BATCH_SIZE)
    gone = [item.pk for key, item in existing.items() if key not in seen]
    for chunk in _chunks(gone):
        result.media_deleted += Media.objects.filter(pk__in=chunk).delete()[0]
    result.media_created += len(to_create)
    result.media_updated += len(to_update)


# ---------------------------------------------------------------------------
# Counts and visibility (also used by the admin)
# ---------------------------------------------------------------------------
def refresh_post_counts(*, creator_ids: list[int]) -> int:
    """
    Recount published posts for these creators; writes only the counts that
    changed. Called after every change of posts or their media, so it also
    marks the cached pages stale once the change commits (`bump_catalog_version`).
    """
    bump_catalog_version()
    changed = []
    for chunk in _chunks(creator_ids):
        counts = dict(
            Post.objects.filter(creator_id__in=chunk, status=Post.Status.PUBLISHED)
            .values("creator_id")
            .annotate(n=Count("id"))
            .values_list("creator_id", "n")
        )
        for creator in Creator.objects.filter(pk__in=chunk).only("id", "post_count"):
            if creator.post_count != counts.get(creator.pk, 0):
                creator.post_count = counts.get(creator.pk, 0)
                changed.append(creator)
    Creator.objects.bulk_update(changed, ["post_count"], batch_size=BATCH_SIZE)
    return len(changed)


@transaction.atomic
def set_creators_status(*, creator_ids: list[int], status: str) -> int:
    """Publish or hide creators (admin action). Returns how many changed."""
    bump_catalog_version()
    return Creator.objects.filter(pk__in=creator_ids).exclude(status=status).update(status=status)


@transaction.atomic
def set_posts_status(*, post_ids: list[int], status: str) -> int:
    """Publish or hide posts (admin action); keeps the creators' post counts right."""
    qs = Post.objects.filter(pk__in=post_ids).exclude(status=status)
    creator_ids = list(qs.values_list("creator_id", flat=True).distinct())
    changed = qs.update(status=status, removed_from_source=False)
    bump_catalog_version()
    refresh_post_counts(creator_ids=creator_ids)
    return changed


# ---------------------------------------------------------------------------
# Celery doors (catalog/tasks.py re-exports them for autodiscovery). Contract §6 names the
# publish task `whitelabel.tasks.publish`; it is registered under that name as well as
# `catalog.tasks.publish`.
# ---------------------------------------------------------------------------
def _publish(*, creator: str | None = None, creators: list[str] | None = None, publish_all: bool = False) -> str:
    names = list(creators or []) + ([creator] if creator else [])
    result = publish_whitelabel(folder_names=names or None, publish_all=publish_all)
    return result.summary()


@shared_task(name="catalog.tasks.publish")
def publish_task(*, creator: str | None = None, creators: list[str] | None = None, publish_all: bool = False) -> str:
    """Publish white-label creators (by folder name or slug), or all of them."""
    return _publish(creator=creator, creators=creators, publish_all=publish_all)


@shared_task(name="whitelabel.tasks.publish")
def publish_whitelabel_task(*, creator: str | None = None, creators: list[str] | None = None, publish_all: bool = False) -> str:
    """The contract's name for `catalog.tasks.publish`."""
    return _publish(creator=creator, creators=creators, publish_all=publish_all)
