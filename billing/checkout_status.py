"""
The status a waiting checkout page polls (`GET /api/checkout/<id>`), kept in
the cache so that the polling of a launch (hundreds of buyers waiting for
their bank app) costs no PostgreSQL query.

The cache is written through, never guessed at: every service that changes a
checkout's status calls `publish_after_commit`, which, once the transaction
has committed, reads the rows back and *sets* their entries, then announces
the new statuses to the open event streams (billing/checkout_events.py). A reader that
missed the cache and read the database itself only *adds* its entry (a
no-op when one is there), so a reader that read `pending` just before a
payment committed can never overwrite the `paid` the payment wrote. Entries
expire after CHECKOUT_STATUS_CACHE_SECONDS, which bounds what a lost cache
write (Redis unreachable at that instant) could leave stale.

An entry holds what an anonymous holder of the id may see, plus the owner's
id to check who asks: {checkout_id, status, total_amount, paid_at, user_id}.
The subscription behind a paid checkout is never cached: an owner asking
about a paid checkout is answered from the database.
"""

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from rest_framework.fields import DateTimeField

from billing.checkout_events import announce
from billing.models import Checkout

FIELDS = ("public_id", "status", "total_cents", "paid_at", "user_id")


def cache_key(public_id) -> str:
    return f"billing:checkout-status:{public_id}"


def entry(row: dict) -> dict:
    return {
        "checkout_id": str(row["public_id"]),
        "status": row["status"],
        "total_amount": row["total_cents"],
        # Rendered as the API renders it (DRF, the site's time zone), so both answers are the same bytes.
        "paid_at": DateTimeField().to_representation(row["paid_at"])
        if row["paid_at"]
        else None,
        "user_id": row["user_id"],
    }


def cached_status(public_id) -> dict | None:
    """The cached entry of a checkout, or None (never cached, expired, or the cache is down)."""
    return cache.get(cache_key(public_id))


def remember_status(checkout: Checkout) -> None:
    """A reader's fill after a miss: added only if no entry is there (a writer's always wins)."""
    cache.add(
        cache_key(checkout.public_id),
        entry({field: getattr(checkout, field) for field in FIELDS}),
        settings.CHECKOUT_STATUS_CACHE_SECONDS,
    )


def publish_after_commit(**lookup) -> None:
    """
    After the current transaction commits, (re)write the entries of the
    checkouts matching `lookup` (e.g. pk=..., or the filter of a bulk update)
    from what the database then holds.
    """

    def publish():
        rows = Checkout.objects.filter(**lookup).values(*FIELDS)
        cache.set_many(
            {cache_key(row["public_id"]): entry(row) for row in rows},
            settings.CHECKOUT_STATUS_CACHE_SECONDS,
        )
        # Then the open event streams of these checkouts, in whichever process holds them (cache first:
        # a stream that hears the news may answer from it).
        announce([(str(row["public_id"]), row["status"]) for row in rows])

    transaction.on_commit(publish)
