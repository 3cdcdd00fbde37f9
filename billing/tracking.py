"""
Where a sale came from (contract §3 `tracking`): the campaign parameters of
the landing URL, kept as first touch and last touch. One rule for what is a
valid touch (`clean_touch`), used by the attribution cookie and by the
checkout API alike.
"""

from __future__ import annotations

TRACKING_KEYS = (
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_content",
    "utm_term",
    "src",
    "sck",
    "fbclid",
    "gclid",
    "ttclid",
)
# Long enough for any real click id (fbclid is ~100 characters), short enough that
# a crafted URL cannot bloat the cookie or the checkout row.
MAX_VALUE_LENGTH = 255


def clean_touch(values) -> dict[str, str]:
    """Known keys only, non-empty strings trimmed to MAX_VALUE_LENGTH; anything else is dropped."""
    if not isinstance(values, dict):
        return {}
    touch = {}
    for key in TRACKING_KEYS:
        value = values.get(key)
        if isinstance(value, str) and value.strip():
            touch[key] = value.strip()[:MAX_VALUE_LENGTH]
    return touch


def checkout_tracking(*, first: dict | None, last: dict | None) -> dict:
    """What a checkout stores: {"first": {...}, "last": {...}}; a lone touch is both."""
    first, last = clean_touch(first or {}), clean_touch(last or {})
    if not first and not last:
        return {}
    return {"first": first or last, "last": last or first}


def last_touch(tracking: dict | None) -> dict:
    """The touch a sale is credited to (the dashboard, the filters, the webhooks)."""
    return (tracking or {}).get("last") or {}
