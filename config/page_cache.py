"""
Pages kept in the cache for every visitor who sees the same page: a
launch's traffic is mostly people who see what everyone like them sees.
catalog.page_cache keeps the home, creator and post pages of visitors
without access; billing.page_cache the plans and checkout pages of visitors
with no subscription.

Who shares a page is the caller's rule (`shared`). The key holds what such a
page depends on besides that rule: the kind's version (bumped after every
change the pages show, `bump_version`), the path (with its query, which the
caller's `query` pattern keeps to a few forms), the active language, logged
in or not (the menu), whether the visitor has answered the cookie banner and
which tracking pixels their consent lets the page load (integrations.pixels).
`settings.CATALOG_PAGE_CACHE_SECONDS` bounds what a version write lost while
the cache was unreachable could leave stale.

What a page holds of the visitor's own is never stored:
- CSRF tokens (the language switch, a member's log-out form, the checkout's
  forms) become a placeholder before the page is stored, and each answer
  carries the visitor's own token;
- values such as the name a checkout form is filled in with: the view reads
  them with `own_values`, which gives placeholders while the page is being
  rendered to be stored; each answer fills in the visitor's values, escaped
  as the template would have.
A visitor with a message waiting (e.g. "you have logged out") gets the page
rendered, so the message is shown once and not cached. A page's own
Content-Security-Policy additions (`response._csp_update`, django-csp) are
kept with it.
"""

import hashlib
import re
import time
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.contrib.messages import get_messages
from django.core.cache import cache
from django.db import transaction
from django.http import HttpResponse
from django.middleware.csrf import get_token
from django.utils.html import escape
from django.utils.translation import get_language

from integrations.pixels import pixels_for
from legal.consent import read_consent

CSRF_PLACEHOLDER = "csrf-token-of-the-visitor-4f1c9b"
CSRF_INPUT = re.compile(r'(name="csrfmiddlewaretoken" value=")[^"]*(")')
# Set on the request while its page is rendered to be stored (own_values then gives placeholders).
_RENDERING_FOR_CACHE = "_page_cache_own_values"


def fill_placeholder(name: str) -> str:
    return f"own-value-of-the-visitor-{name}-4f1c9b"


def new_version() -> str:
    return str(time.time_ns())


def bump_version(version_key: str) -> None:
    """After the current transaction commits, every page kept under this version is stale (its key changes)."""
    transaction.on_commit(lambda: cache.set(version_key, new_version(), None))


def own_values(request, values: dict[str, str]) -> dict[str, str]:
    """The visitor's own values a page shows, or their placeholders while the page is rendered to be stored."""
    if getattr(request, _RENDERING_FOR_CACHE, False):
        return {name: fill_placeholder(name) for name in values}
    return values


def page_key(request, version_key: str) -> str:
    version = cache.get(version_key) or "0"
    path = hashlib.sha256(request.get_full_path().encode()).hexdigest()[:32]
    banner = "decided" if read_consent(request).decided else "banner"
    visitor = "member" if request.user.is_authenticated else "guest"
    return f"page:{version_key}:{version}:{get_language()}:{visitor}:{banner}:{pixels_for(request).cache_key()}:{path}"


def shared_page(
    *,
    version_key: str,
    shared: Callable,
    query: re.Pattern,
    values: Callable | None = None,
):
    """
    Serve the view from the cache to the visitors `shared(request)` admits, on
    a GET whose query string `query` matches. `values(request)` gives the
    visitor's own values the view reads through `own_values`.
    """

    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not (
                request.method == "GET"
                and query.match(request.META.get("QUERY_STRING", ""))
                and not len(get_messages(request))  # counting does not mark them shown
                and shared(request)
            ):
                return view(request, *args, **kwargs)
            key = page_key(request, version_key)
            stored = cache.get(key)
            if stored is None:
                setattr(request, _RENDERING_FOR_CACHE, True)
                try:
                    response = view(request, *args, **kwargs)
                finally:
                    delattr(request, _RENDERING_FOR_CACHE)
                if response.status_code != 200:
                    return response
                html = CSRF_INPUT.sub(rf"\g<1>{CSRF_PLACEHOLDER}\g<2>", response.content.decode(response.charset))
                stored = (html, getattr(response, "_csp_update", None))
                cache.set(key, stored, settings.CATALOG_PAGE_CACHE_SECONDS)
            html, csp_update = stored
            html = html.replace(CSRF_PLACEHOLDER, get_token(request))
            if values is not None:
                for name, value in values(request).items():
                    html = html.replace(fill_placeholder(name), escape(value))
            response = HttpResponse(html)
            if csp_update:
                response._csp_update = csp_update
            return response

        return wrapper

    return decorator
