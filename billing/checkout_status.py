"""
The status a waiting checkout page polls (`GET /api/checkout/<id>`), kept in
the cache so that the polling of a launch (hundreds of buyers waiting for
their bank app) costs no PostgreSQL query.

The cache is written through, never guessed at: every service that changes a
field an entry holds does it through `save_checkout` (one row) or
`update_checkouts` (a set-based UPDATE), which call `publish_after_commit`:
once the transaction has committed, it reads the rows back and *sets* their
entries. Nothing else writes those fields (a test scans the code for it), so
no path can forget the cache. A reader that
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

    transaction.on_commit(publish)


# The model fields an entry is made of: a change of any of them rewrites the entry.
CACHED_FIELDS = frozenset({"status", "total_cents", "paid_at", "user", "user_id"})


def save_checkout(checkout: Checkout, *, update_fields) -> None:
    """The one way a service saves a checkout: saved, and its entry rewritten after commit when it changed."""
    checkout.save(update_fields=update_fields)
    if CACHED_FIELDS.intersection(update_fields):
        publish_after_commit(pk=checkout.pk)


def update_checkouts(queryset, **values) -> int:
    """
    The one way a service changes many checkouts in one UPDATE. `values`
    carries `updated_at` (the moment of the change): the rows it changed are
    found again by it (and by their new status) to rewrite their entries.
    """
    changed = queryset.update(**values)
    if changed and CACHED_FIELDS.intersection(values):
        publish_after_commit(updated_at=values["updated_at"], **{k: values[k] for k in ("status",) if k in values})
    return changed
