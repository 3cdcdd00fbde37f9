"""
The home, creator and post pages as a visitor without access sees them (a
launch's landing traffic, and its buyers before they pay), served from the
cache.

Only for visitors who may see no media: anonymous visitors and logged-in
members without access. Their pages differ only in the menu ("Log in" or "My
account"), so both are kept, apart. A subscriber's page (the media URLs
signed for them) is rendered for them every time. The key holds what such a
page depends on: the path (with `?page=N`, the only query the pages read),
the active language, logged in or not, the catalog's version, whether the
visitor has answered the cookie banner and which tracking pixels their
consent lets the page load (integrations.pixels). The version is bumped after
any publish, status change, admin save or delete of a creator or post (with
its media) and new preview commits, so a visitor sees the catalog as
published; CATALOG_PAGE_CACHE_SECONDS bounds what a version write lost while
the cache was unreachable could leave stale.

The pages carry CSRF tokens (the language switch, a member's log-out form):
they are replaced by a placeholder before the page is stored, and the
visitor's own token is put in their place on every answer. A visitor with a
message waiting (e.g. "you have logged out") gets the page rendered, so the
message is shown once and not cached.
"""

import hashlib
import re
import time
from functools import wraps

from django.conf import settings
from django.contrib.messages import get_messages
from django.core.cache import cache
from django.db import transaction
from django.http import HttpResponse
from django.middleware.csrf import get_token
from django.utils.translation import get_language

from billing.access import user_has_access
from integrations.pixels import pixels_for
from legal.consent import read_consent

VERSION_KEY = "catalog:page-version"
CSRF_PLACEHOLDER = "csrf-token-of-the-visitor-4f1c9b"
CSRF_INPUT = re.compile(r'(name="csrfmiddlewaretoken" value=")[^"]*(")')
QUERY = re.compile(r"^(page=\d{1,4})?$")


def new_version() -> str:
    return str(time.time_ns())


def bump_catalog_version() -> None:
    """
    After the current transaction commits, every cached page is stale: the
    anonymous pages here (their key changes) and the subscribers' API pages
    (`catalog.api_cache`, which compare the version stored with them).
    """
    transaction.on_commit(lambda: cache.set(VERSION_KEY, new_version(), None))


def page_key(request) -> str:
    version = cache.get(VERSION_KEY) or "0"
    path = hashlib.sha256(request.get_full_path().encode()).hexdigest()[:32]
    banner = "decided" if read_consent(request).decided else "banner"
    visitor = "member" if request.user.is_authenticated else "guest"
    return f"catalog:page:{version}:{get_language()}:{visitor}:{banner}:{pixels_for(request).cache_key()}:{path}"


def cacheable(request) -> bool:
    return bool(
        request.method == "GET"
        and QUERY.match(request.META.get("QUERY_STRING", ""))
        and not len(get_messages(request))  # counting does not mark them shown
        and (not request.user.is_authenticated or not user_has_access(request.user))
    )


def page_cache_without_access(view):
    """Serve `view` from the cache to visitors without access (see the module's docstring)."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not cacheable(request):
            return view(request, *args, **kwargs)
        key = page_key(request)
        html = cache.get(key)
        if html is None:
            response = view(request, *args, **kwargs)
            if response.status_code != 200:
                return response
            html = CSRF_INPUT.sub(
                rf"\g<1>{CSRF_PLACEHOLDER}\g<2>",
                response.content.decode(response.charset),
            )
            cache.set(key, html, settings.CATALOG_PAGE_CACHE_SECONDS)
        return HttpResponse(html.replace(CSRF_PLACEHOLDER, get_token(request)))

    return wrapper
