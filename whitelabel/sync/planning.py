"""
The diff: given a listed page and what is stored, what to insert or update. No database writes.

The planner works by name (creator folder, post folder, key). Rows stored before the run carry
their ids; rows this run creates are referred to by name and get their ids from the writer,
which may be a page or two behind. That is enough: a key fixes its creator and post, so the
media of a post this run created are new by construction and never need reading back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.utils.text import slugify

from whitelabel.keys import KeyKind, natural_sort_key, object_url, parse_key
from whitelabel.models import WhitelabelCreator
from whitelabel.sync.results import SyncCounts
from whitelabel.sync.stored import CreatorState, Snapshot

PROFILE_FIELDS = {KeyKind.THUMBNAIL: "thumbnail", KeyKind.ICON: "icon", KeyKind.BANNER: "banner"}
PROFILE_KINDS = ("thumbnail", "icon", "banner")

Ref = tuple[str, str]  # (creator folder, post folder)


@dataclass
class PagePlan:
    """
    One page's writes. `counts` are what the page adds to the run once (and only once) its
    writes are committed.

    creators: rows to upsert (new creators, changed profile images).
    posts: (stored creator id or None, creator folder, post folder) of the posts to create.
    media: (stored post id or None, (creator, post), key, url, type, size, etag, last_modified,
        sort_key) of the media to upsert; None means a post this run creates.
    changed_post_ids: stored posts whose media are rewritten (their aggregates move).
    """

    counts: SyncCounts
    creators: list[WhitelabelCreator] = field(default_factory=list)
    posts: list[tuple[int | None, str, str]] = field(default_factory=list)
    media: list[tuple] = field(default_factory=list)
    changed_post_ids: set[int] = field(default_factory=set)

    @property
    def writes(self) -> bool:
        return bool(self.creators or self.posts or self.media)


class Planner:
    """
    Plans pages in listing order and remembers what it planned, as if every plan were written:
    if one is not, the run fails and nothing planned after it matters.

    `read_media(post_ids)` returns the stored media of stored posts (`stored.media_reader()`).
    """

    def __init__(
        self,
        snapshot: Snapshot,
        *,
        scope: str,
        bucket_prefix: str,
        base_url: str,
        now,
        read_media: Callable[[list[int]], dict[int, dict[str, tuple]]],
    ):
        self.scope = scope
        self.bucket_prefix = bucket_prefix
        self.base_url = base_url
        self.now = now
        self.read_media = read_media
        self.rewrite_urls = snapshot.rewrite_urls
        self.creators: dict[str, CreatorState] = snapshot.creators
        self.posts: dict[Ref, int | None] = dict(snapshot.posts)  # None: created by this run
        self.taken_slugs = {state.slug for state in self.creators.values()}
        # Stored rows seen in the listing (rows this run writes are the writer's to report).
        self.seen_creator_ids: set[int] = set()
        self.seen_post_ids: set[int] = set()
        self.seen_media_ids: set[int] = set()
        self.seen_profiles: dict[str, dict] = {}  # creator -> smallest key of each profile kind seen
        self.seen_names: set[str] = set()  # creators with at least one key in this listing
        self.media_by_post: dict[int, dict[str, tuple]] = {}  # stored media of the last page's posts

    def url(self, key: str) -> str:
        return object_url(self.base_url, key)

    # ---- per page

    def plan_page(self, contents: list[dict]) -> PagePlan:
        counts = SyncCounts(pages=1, keys_listed=len(contents))
        plan = PagePlan(counts)
        media: list[tuple] = []  # (parsed, obj)
        page_creators: set[str] = set()
        scope, prefix, seen_profiles = self.scope, self.bucket_prefix, self.seen_profiles
        for obj in contents:
            parsed = parse_key(obj["Key"], prefix)
            kind = parsed.kind
            if kind is KeyKind.SKIPPED:
                counts.skipped[parsed.skip_reason.value] += 1
                continue
            if scope and parsed.creator != scope:
                counts.skipped["outside_prefix"] += 1
                continue
            page_creators.add(parsed.creator)
            if kind is KeyKind.MEDIA:
                media.append((parsed, obj))
            else:
                seen = seen_profiles.setdefault(parsed.creator, {})
                name = PROFILE_FIELDS[kind]
                # Several candidates (icon.jpg and icon.png): the smallest key wins, whatever the page order.
                if name not in seen or parsed.key < seen[name]:
                    seen[name] = parsed.key
        if not page_creators:
            return plan
        self.seen_names.update(page_creators)
        plan.creators = self._creator_rows(page_creators, counts, final=False)
        post_ids = self._plan_posts(media, plan)
        self._plan_media(media, post_ids, plan)
        for name in page_creators:
            pk = self.creators[name].id
            if pk is not None:
                self.seen_creator_ids.add(pk)
        return plan

    def final_creators(self) -> PagePlan:
        """After a complete listing: clear the profile images that disappeared."""
        counts = SyncCounts()
        return PagePlan(counts, creators=self._creator_rows(self.seen_names, counts, final=True))

    # ---- creators

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

    def _desired_profile(self, state: CreatorState | None, name: str, *, final: bool) -> dict:
        seen = self.seen_profiles.get(name, {})
        if final or state is None:
            return {k: seen.get(k, "") for k in PROFILE_KINDS}
        # Mid-listing, never clear: the image may still come on a later page.
        return {k: seen.get(k) or state.stored.get(k, "") for k in PROFILE_KINDS}

    def _creator_rows(self, names: Iterable[str], counts: SyncCounts, *, final: bool) -> list[WhitelabelCreator]:
        """Rows to upsert: new creators, and creators whose profile images (or URLs) changed."""
        rows = []
        for name in sorted(names):
            state = self.creators.get(name)
            if state is None:
                slug = self._new_slug(name)
                counts.creators_created += 1
            elif final and state.id is None:
                # Created by this run: its pages wrote every profile image seen, nothing to clear.
                continue
            else:
                slug = state.slug
            desired = self._desired_profile(state, name, final=final)
            if state is not None:
                if desired == state.stored and not self.rewrite_urls:
                    continue
                counts.creators_updated += 1
            row = WhitelabelCreator(folder_name=name, slug=slug, last_synced_at=self.now)
            for kind, key in desired.items():
                setattr(row, f"{kind}_key", key)
                setattr(row, f"{kind}_url", self.url(key) if key else "")
            rows.append(row)
            self.creators[name] = CreatorState(id=state.id if state else None, slug=slug, stored=desired)
        return rows

    # ---- posts

    def _plan_posts(self, media: list[tuple], plan: PagePlan) -> dict[Ref, int | None]:
        """(creator, post) -> stored post id (None: created by this run) for the page's posts."""
        post_ids: dict[Ref, int | None] = {}
        missing = _MISSING
        for ref in {(parsed.creator, parsed.post) for parsed, _obj in media}:
            # All stored posts were preloaded: one not found is new.
            pk = self.posts.get(ref, missing)
            if pk is missing:
                pk = self.posts[ref] = None
                plan.posts.append((self.creators[ref[0]].id, *ref))
            elif pk is not None:
                self.seen_post_ids.add(pk)
            post_ids[ref] = pk
        plan.posts.sort(key=lambda post: post[1:])
        plan.counts.posts_created += len(plan.posts)
        return post_ids

    # ---- media

    def _plan_media(self, media: list[tuple], post_ids: dict[Ref, int | None], plan: PagePlan) -> None:
        """The media to upsert: new, or differing from what is stored (etag, size, type, post, URL base)."""
        stored = self._stored_media({pk for pk in post_ids.values() if pk is not None})
        rewrite_urls, counts, url, rows = self.rewrite_urls, plan.counts, self.url, plan.media
        for parsed, obj in media:
            ref = (parsed.creator, parsed.post)
            key = parsed.key
            post_id = post_ids[ref]
            size = int(obj.get("Size") or 0)
            etag = (obj.get("ETag") or "").strip('"')
            current = stored.get(key)
            if current is not None:
                pk, old_post_id, old_type, old_size, old_etag = current
                self.seen_media_ids.add(pk)
                # The URL is a function of the key and the base URL, checked once per run.
                same = (old_post_id, old_type, old_size, old_etag) == (post_id, parsed.media_type, size, etag)
                if same and not rewrite_urls:
                    continue
                counts.media_updated += 1
                plan.changed_post_ids.add(old_post_id)
            else:
                counts.media_created += 1
            rows.append(
                (
                    post_id,
                    ref,
                    key,
                    url(key),
                    parsed.media_type,
                    size,
                    etag,
                    obj.get("LastModified"),
                    natural_sort_key(parsed.path_in_post),
                )
            )

    def _stored_media(self, post_ids: set[int]) -> dict[str, tuple]:
        """
        key -> (id, post_id, type, size, etag) of the stored media of `post_ids`.

        A post that straddles two pages is read once: the last page's rows are kept.
        """
        cached = {pk: self.media_by_post[pk] for pk in post_ids if pk in self.media_by_post}
        wanted = sorted(post_ids - cached.keys())
        self.media_by_post = {**cached, **(self.read_media(wanted) if wanted else {})}
        result: dict[str, tuple] = {}
        for rows in self.media_by_post.values():
            result.update(rows)
        return result


_MISSING = object()
