"""
The status a waiting checkout page polls (`GET /api/checkout/<id>`), kept in
the cache so that the polling of a launch (hundreds of buyers waiting for
their bank app) costs no PostgreSQL query.

The cache is written through, never guessed at: every service that changes a
field an entry holds does it through `save_checkout` (one row) or
`update_checkouts` (a set-based UPDATE), which call `publish_after_commit`:
once the transaction has committed, it reads the rows back and *sets* their
entries. Nothing else writes those fields (a test scans the code for it), so
no path can forget the cache. Then it announces the new statuses to the open
event streams (billing/checkout_events.py). A reader that
missed the cache and read the database itself only *adds* its entry (a
no-op when one is there), so a reader that read `pending` just before a
payment committed can never overwrite the `paid` the payment wrote. Entries
expire after CHECKOUT_STATUS_CACHE_SECONDS, which bounds what a lost cache
write (Redis unreachable at that instant) could leave stale.

A write lost while Redis was unreachable must not leave the entry from before
it (`pending` for a checkout since paid) to be read once Redis is back with its
data. So every entry carries the cache *generation* it was written in, read in
the same round trip as the entry; a process that failed to reach Redis bumps
the generation as soon as it reaches it again, and entries of an older
generation are misses (deleted, then refilled from the database). Any process
that saw the outage ends it for all: no process has to outlive it, and a
reader pays no extra round trip.

An entry holds what an anonymous holder of the id may see, plus the owner's
id to check who asks: {checkout_id, status, total_amount, paid_at, user_id, generation}.
The subscription behind a paid checkout is never cached: an owner asking
about a paid checkout is answered from the database.
"""

import logging

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django_redis.exceptions import ConnectionInterrupted
from rest_framework.fields import DateTimeField

from billing.checkout_events import announce
from billing.models import Checkout

logger = logging.getLogger(__name__)

FIELDS = ("public_id", "status", "total_cents", "paid_at", "user_id")
GENERATION_KEY = "billing:checkout-status:generation"


def cache_key(public_id) -> str:
    return f"billing:checkout-status:{public_id}"


class _Outage:
    """Whether this process failed to reach Redis since it last bumped the generation: only the
    trigger of the bump, which is what every process sees."""

    seen = False


def _client():
    """django-redis's client, whose calls raise on a lost connection (the cache's own swallow it);
    None with the local-memory cache (no REDIS_URL), where nothing can be lost."""
    return cache.client if settings.REDIS_URL else None


def _unreachable(exc: Exception) -> None:
    if not _Outage.seen:
        logger.warning("checkout status cache unreachable; its entries are renewed when it returns", extra={"error": type(exc).__name__})
    _Outage.seen = True


def _generation(client) -> int:
    """The current generation; first bumped if this process saw an outage that has now ended."""
    if _Outage.seen:
        _Outage.seen = False
        return client.incr(GENERATION_KEY, ignore_key_check=True)
    return client.get(GENERATION_KEY) or 0


def entry(row: dict, generation: int = 0) -> dict:
    return {
        "checkout_id": str(row["public_id"]),
        "status": row["status"],
        "total_amount": row["total_cents"],
        # Rendered as the API renders it (DRF, the site's time zone), so both answers are the same bytes.
        "paid_at": DateTimeField().to_representation(row["paid_at"])
        if row["paid_at"]
        else None,
        "user_id": row["user_id"],
        "generation": generation,
    }


def cached_status(public_id) -> dict | None:
    """The cached entry of a checkout, or None (never cached, expired, written before an outage ended, or the cache is down)."""
    client = _client()
    if client is None:
        return cache.get(cache_key(public_id))
    key = cache_key(public_id)
    try:
        if _Outage.seen:
            _generation(client)
        found = client.get_many([key, GENERATION_KEY])
        current = found.get(GENERATION_KEY) or 0
        stored = found.get(key)
        if stored is not None and stored.get("generation", 0) != current:
            # Possibly missed a write while Redis was away: the database answers, and refills it.
            client.delete(key)
            return None
    except ConnectionInterrupted as exc:
        _unreachable(exc)
        return None
    return stored


def remember_status(checkout: Checkout) -> None:
    """A reader's fill after a miss: added only if no entry is there (a writer's always wins)."""
    row = {field: getattr(checkout, field) for field in FIELDS}
    client = _client()
    if client is None:
        cache.add(cache_key(checkout.public_id), entry(row), settings.CHECKOUT_STATUS_CACHE_SECONDS)
        return
    try:
        client.add(cache_key(checkout.public_id), entry(row, _generation(client)), settings.CHECKOUT_STATUS_CACHE_SECONDS)
    except ConnectionInterrupted as exc:
        _unreachable(exc)


def publish_after_commit(**lookup) -> None:
    """
    After the current transaction commits, (re)write the entries of the
    checkouts matching `lookup` (e.g. pk=..., or the filter of a bulk update)
    from what the database then holds. A write Redis does not take marks the
    outage (see the module's docstring).
    """

    def publish():
        rows = list(Checkout.objects.filter(**lookup).values(*FIELDS))
        client = _client()
        if client is None:
            cache.set_many({cache_key(row["public_id"]): entry(row) for row in rows}, settings.CHECKOUT_STATUS_CACHE_SECONDS)
        else:
            try:
                generation = _generation(client)
                client.set_many(
                    {cache_key(row["public_id"]): entry(row, generation) for row in rows},
                    settings.CHECKOUT_STATUS_CACHE_SECONDS,
                )
            except ConnectionInterrupted as exc:
                _unreachable(exc)
        # Then the open event streams of these checkouts, in whichever process holds them (cache first:
        # a stream that hears the news may answer from it).
        announce([(str(row["public_id"]), row["status"]) for row in rows])

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
