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

How a page is kept (its CSRF tokens, a visitor's messages) is
config.page_cache's.
"""

import re

from billing.access import user_has_access
from config.page_cache import bump_version, shared_page

VERSION_KEY = "catalog:page-version"
QUERY = re.compile(r"^(page=\d{1,4})?$")


def bump_catalog_version() -> None:
    """
    After the current transaction commits, every cached page is stale: the
    anonymous pages here (their key changes) and the subscribers' API pages
    (`catalog.api_cache`, which compare the version stored with them).
    """
    bump_version(VERSION_KEY)


def without_access(request) -> bool:
    return not request.user.is_authenticated or not user_has_access(request.user)


# Serve the view from the cache to visitors without access (see the module's docstring).
page_cache_without_access = shared_page(version_key=VERSION_KEY, shared=without_access, query=QUERY)
