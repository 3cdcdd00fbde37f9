"""
What a bucket key means (contract §7), as a pure function.

    <creator>/<file>.<image ext>                 creator thumbnail
    <creator>/profile/icon.<image ext>           icon   (any case)
    <creator>/profile/banner.<image ext>         banner (any case)
    <creator>/<post>/<any/depth/file>            media of that post: video or image by extension
    anything else                                skipped, with the reason

`parse_key` never touches the network or the database, so the sync can call
it 100,000 times a run and the tests can feed it a table of keys.
"""

from __future__ import annotations

import re
from enum import StrEnum
from functools import lru_cache
from typing import NamedTuple
from urllib.parse import quote

IMAGE_EXTENSIONS = frozenset({"jpg", "jpeg", "png", "webp", "gif", "avif"})
VIDEO_EXTENSIONS = frozenset({"mp4", "mov", "webm", "m4v", "mkv", "avi", "wmv", "flv"})
PROFILE_FOLDER = "profile"
SORT_KEY_MAX_LENGTH = 1024


class KeyKind(StrEnum):
    THUMBNAIL = "thumbnail"
    ICON = "icon"
    BANNER = "banner"
    MEDIA = "media"
    SKIPPED = "skipped"


class SkipReason(StrEnum):
    OUTSIDE_PREFIX = "outside_prefix"  # not below WHITELABEL_PREFIX
    FOLDER_MARKER = "folder_marker"  # ends with "/": a console-created "folder"
    HIDDEN_FILE = "hidden_file"  # a segment starts with "." (.DS_Store, ._x.jpg, .trash/)
    OTHER_SHAPE = "other_shape"  # a file at the root, or an empty segment ("a//b")
    NO_EXTENSION = "no_extension"
    UNSUPPORTED_TYPE = "unsupported_type"  # extension neither image nor video (or a video as thumbnail)
    PROFILE_OTHER = "profile_other"  # something under <creator>/profile/ that is not icon/banner


class ParsedKey(NamedTuple):
    """Immutable; a named tuple because the sync builds one per key (a third of a frozen dataclass's cost)."""

    key: str
    kind: KeyKind
    creator: str = ""
    post: str = ""
    media_type: str = ""  # "image" | "video" for MEDIA
    path_in_post: str = ""  # "a/b/3.jpg" for <creator>/<post>/a/b/3.jpg
    skip_reason: SkipReason | None = None

    @property
    def skipped(self) -> bool:
        return self.kind is KeyKind.SKIPPED


def normalize_prefix(prefix: str) -> str:
    """`content`, `/content/` and `content/` all mean the folder `content/`; empty means the bucket root."""
    prefix = (prefix or "").strip("/")
    return f"{prefix}/" if prefix else ""


def _extension(name: str) -> str:
    dot = name.rfind(".")
    if dot <= 0 or dot == len(name) - 1:
        return ""
    return name[dot + 1 :].lower()


def _skip(key: str, reason: SkipReason, creator: str = "") -> ParsedKey:
    return ParsedKey(key=key, kind=KeyKind.SKIPPED, creator=creator, skip_reason=reason)


def parse_key(key: str, prefix: str = "") -> ParsedKey:
    """Classify one key. `prefix` is the bucket prefix (normalised with `normalize_prefix`)."""
    if prefix:
        if not key.startswith(prefix):
            return _skip(key, SkipReason.OUTSIDE_PREFIX)
        rel = key[len(prefix) :]
    else:
        rel = key
    if not rel or rel[-1] == "/":
        return _skip(key, SkipReason.FOLDER_MARKER)
    # String tests instead of a loop over segments: this runs for every key of every sync.
    if rel[0] == "." or "/." in rel:
        return _skip(key, SkipReason.HIDDEN_FILE)
    if rel[0] == "/" or "//" in rel or "/" not in rel:
        return _skip(key, SkipReason.OTHER_SHAPE)
    parts = rel.split("/")

    creator, name = parts[0], parts[-1]
    ext = _extension(name)

    if len(parts) == 2:
        if not ext:
            return _skip(key, SkipReason.NO_EXTENSION, creator)
        if ext not in IMAGE_EXTENSIONS:
            return _skip(key, SkipReason.UNSUPPORTED_TYPE, creator)
        return ParsedKey(key=key, kind=KeyKind.THUMBNAIL, creator=creator)

    if parts[1].lower() == PROFILE_FOLDER:
        if len(parts) == 3 and ext in IMAGE_EXTENSIONS:
            stem = name[: -(len(ext) + 1)].lower()
            if stem == "icon":
                return ParsedKey(key=key, kind=KeyKind.ICON, creator=creator)
            if stem == "banner":
                return ParsedKey(key=key, kind=KeyKind.BANNER, creator=creator)
        return _skip(key, SkipReason.PROFILE_OTHER, creator)

    if not ext:
        return _skip(key, SkipReason.NO_EXTENSION, creator)
    if ext in VIDEO_EXTENSIONS:
        media_type = "video"
    elif ext in IMAGE_EXTENSIONS:
        media_type = "image"
    else:
        return _skip(key, SkipReason.UNSUPPORTED_TYPE, creator)
    return ParsedKey(
        key=key,
        kind=KeyKind.MEDIA,
        creator=creator,
        post=parts[1],
        media_type=media_type,
        path_in_post="/".join(parts[2:]),
    )


_DIGITS = re.compile(r"\d+")


@lru_cache(maxsize=8192)
def natural_sort_key(path: str) -> str:
    """
    `2.jpg` sorts before `10.jpg`: digit runs are zero-padded, letters case-folded.

    Cached: the same file names (`1.jpg`, `2.jpg`, …) recur in post after post.
    """
    return _DIGITS.sub(lambda m: m.group().zfill(10), path.casefold())[:SORT_KEY_MAX_LENGTH]


def title_from_folder(folder_name: str) -> str:
    """`ensaio_praia  2024` → `ensaio praia 2024`."""
    return " ".join(folder_name.replace("_", " ").split()) or folder_name


@lru_cache(maxsize=4096)
def _quote_segment(segment: str) -> str:
    # Creator and post folders repeat across thousands of keys: quote each once.
    return quote(segment, safe="")


def object_url(base_url: str, key: str) -> str:
    """Public URL of a key: each path segment percent-encoded (spaces, `+`, `%`, accents, any UTF-8)."""
    return base_url.rstrip("/") + "/" + "/".join(map(_quote_segment, key.split("/")))
