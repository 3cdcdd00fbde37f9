"""
The one question the rest of the code asks about a user's access to paid
content. The rule itself ("an active subscription, or past due within grace")
lives next door, in `SubscriptionQuerySet.granting_access` (billing/querysets.py).

It is asked from PostgreSQL on every request that needs it (a refund or an
expiry takes effect on the next request), but the query is compiled once per
process: building and compiling the rule's `Q` objects cost over 4× what running
the query does (docs/catalog.md, "Benchmark"). The compiled SQL comes from the
queryset itself, with stand-in values for the user and the instant, so the
rule still has one home; a rule that derives another date from `now` (which
the stand-ins cannot follow) is asked through the ORM every time instead.
"""

from datetime import UTC, datetime

from django.conf import settings
from django.core.signals import setting_changed
from django.db import connections
from django.dispatch import receiver
from django.utils import timezone

from billing.models import Subscription
from billing.periods import grace_start

# Stand-ins no real query carries: a user id that cannot exist and an instant long past.
_USER = -4_012_345_678
_NOW = datetime(2001, 2, 3, 4, 5, 6, 789_012, tzinfo=UTC)
_compiled: dict[tuple, tuple[str, tuple] | None] = {}


def _granting_access(now):
    return Subscription.objects.granting_access(now)


def _compile(alias: str) -> tuple[str, tuple] | None:
    """(SQL, slots) of the rule's EXISTS query for `alias`; a slot is "user", "now", "grace" or a constant."""
    connection = connections[alias]
    query = _granting_access(_NOW).using(alias).filter(user_id=_USER).query.exists(limit=True)
    sql, params = query.get_compiler(alias).as_sql()
    adapt = connection.ops.adapt_datetimefield_value
    known = {"now": adapt(_NOW), "grace": adapt(grace_start(_NOW))}
    slots = []
    for param in params:
        if param == _USER:
            slots.append(("user", None))
        elif param == known["now"]:
            slots.append(("now", None))
        elif param == known["grace"]:
            slots.append(("grace", None))
        elif isinstance(param, datetime) or (isinstance(param, str) and param[:4] == str(_NOW.year)):
            return None  # a date derived from `now` some other way: not something to freeze
        else:
            slots.append(("constant", param))
    if ("user", None) not in slots:
        return None
    return sql, tuple(slots)


def _exists(user_id: int, now: datetime) -> bool:
    alias = Subscription.objects.db_manager().db  # the router's read database, as `.exists()` would use
    key = (alias, settings.SUBSCRIPTION_GRACE_DAYS)
    if key not in _compiled:
        _compiled[key] = _compile(alias)
    compiled = _compiled[key]
    if compiled is None:
        return _granting_access(now).filter(user_id=user_id).exists()
    sql, slots = compiled
    connection = connections[alias]
    adapt = connection.ops.adapt_datetimefield_value
    values = {"user": user_id, "now": adapt(now), "grace": adapt(grace_start(now))}
    params = [value if kind == "constant" else values[kind] for kind, value in slots]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone() is not None


def user_has_access(user, *, now=None) -> bool:
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    if user.age_confirmed_at is None:
        return False  # contract §8: access only once the user's age is confirmed
    return _exists(user.pk, now or timezone.now())


@receiver(setting_changed)
def _forget_compiled(*, setting, **kwargs):
    if setting in {"SUBSCRIPTION_GRACE_DAYS", "DATABASES", "USE_TZ", "TIME_ZONE"}:
        _compiled.clear()
