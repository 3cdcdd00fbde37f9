"""
A creator's posts page as every viewer *with access* sees it
(`GET /api/models/<slug>/posts`), cached as the JSON bytes of the answer.

Why it can be shared: the page holds no per-user data, and a media URL is
the same for everyone within a signing window (`catalog/signing.py`: signed
at the window's start, valid TTL = two windows). So the body depends on the
page's absolute URL (the `next`/`previous` links carry scheme and host), the
signing window, the signing settings, the active language and the catalog.

What it never does: decide access. The view asks `user_has_access` (from
PostgreSQL) on every request *before* it looks here, so a viewer without
access, or one whose subscription expired or was refunded a moment ago,
gets the locked page and never these bytes.

Freshness:

- The catalog's version (`catalog.page_cache`, bumped after every publish,
  post/creator status change, admin save or delete and new preview commits)
  is stored *inside* the entry, and an entry whose version is not the current
  one is ignored. The version is read (in the same round trip as the entry)
  *before* the page is read from the database, so a page built from rows that
  a hide was about to change is stored under the old version and never served.
  With no version in the cache (flushed, evicted) nothing is served or stored
  until one is set again (a fresh one, never used before).
- An entry lives until its signing window ends, so every URL it hands out
  still has at least TTL/2 of validity, as with the URLs signed per request.

With the cache down (django-redis ignores its errors) the page is built from
the database every time, as before.
"""

import hashlib
import re
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.utils.translation import get_language

from catalog import signing
from catalog.page_cache import VERSION_KEY
from config.page_cache import new_version

QUERY = re.compile(r"^(page=\d{1,4})?$")


@dataclass
class Slot:
    """Where a page's body lives in the cache, and the version and window it belongs to."""

    key: str
    version: str
    window_end: float
    body: bytes | None = None

    def store(self, body: bytes) -> None:
        timeout = int(self.window_end - time.time())
        if timeout >= 1:  # a page signed at a window's very end is not worth keeping
            cache.set(self.key, (self.version, body), timeout)


def _signing_settings() -> str:
    return "|".join(
        str(value)
        for value in (
            settings.SIGNED_URL_TTL,
            settings.WHITELABEL_BUCKET,
            settings.AWS_STORAGE_BUCKET_NAME,
            settings.AWS_S3_PUBLIC_ENDPOINT_URL,
            settings.AWS_S3_ENDPOINT_URL,
            settings.AWS_S3_REGION_NAME,
            settings.AWS_ACCESS_KEY_ID,
        )
    )


def slot(request) -> Slot | None:
    """
    The cache slot of this request's page, with its body if a current one is
    there; None when the page is not to be cached (another query string than
    `?page=N`, or no catalog version in the cache). Call only for viewers
    with access.
    """
    if request.method != "GET" or not QUERY.match(request.META.get("QUERY_STRING", "")):
        return None
    length = signing.window_length()
    window = int(time.time()) // length
    page = hashlib.sha256(f"{request.build_absolute_uri()}|{_signing_settings()}".encode()).hexdigest()[:32]
    key = f"catalog:posts-page:{length}:{window}:{get_language()}:{page}"
    found = cache.get_many([VERSION_KEY, key])
    version = found.get(VERSION_KEY)
    if version is None:
        cache.add(VERSION_KEY, new_version(), None)
        return None
    entry = found.get(key)
    body = entry[1] if isinstance(entry, tuple) and entry[0] == version else None
    return Slot(key=key, version=version, window_end=(window + 1) * length, body=body)
