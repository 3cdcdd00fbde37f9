"""
The plans and checkout pages as a visitor with no subscription sees them (a
launch's buyers, guests or members, before they pay), served from the cache
(config.page_cache: how a page is kept, and the visitor's CSRF token and own
values put back on each answer).

A visitor with a subscription the pages name (live or ended: every one but
a pending one, billing.selectors.get_latest_subscription) gets the pages
rendered for them. So does a query string (a coupon, the way
back to a post, a checkout resumed): only the bare pages are kept. The
version is bumped after any save or delete of a plan, an order bump or a
payment gateway (the card form, the sandbox's buttons), whoever makes it.
"""

import re

from billing.models import Subscription
from config.page_cache import bump_version, shared_page

VERSION_KEY = "billing:page-version"
BARE = re.compile(r"^$")


def without_subscription(request) -> bool:
    user = request.user
    # Pending ones are never named on these pages: a buyer back from `process` still shares them.
    return not user.is_authenticated or not Subscription.objects.filter(user=user).exclude(status=Subscription.Status.PENDING).exists()


def bump_sales_pages_version(**kwargs) -> None:
    """A receiver of post_save and post_delete (billing.apps)."""
    bump_version(VERSION_KEY)


def sales_page(values=None):
    return shared_page(version_key=VERSION_KEY, shared=without_subscription, query=BARE, values=values)
