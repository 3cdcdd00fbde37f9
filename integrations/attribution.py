"""
First touch and last touch of a visitor's campaign parameters, kept in a
first-party signed cookie for ATTRIBUTION_COOKIE_DAYS (contract §3
`tracking`). The checkout API reads it back and stores it on the checkout.
"""

from __future__ import annotations

import json
from datetime import timedelta

from django.conf import settings

from billing.tracking import TRACKING_KEYS, checkout_tracking, clean_touch

COOKIE_NAME = "cf_attribution"
_SALT = "integrations.attribution"


def read_attribution(request) -> dict:
    """{"first": {...}, "last": {...}} from the cookie, or {} (absent, tampered with, malformed)."""
    raw = request.get_signed_cookie(COOKIE_NAME, default=None, salt=_SALT, max_age=timedelta(days=settings.ATTRIBUTION_COOKIE_DAYS))
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    if not isinstance(value, dict):
        return {}
    return checkout_tracking(first=value.get("first"), last=value.get("last"))


def tracking_for_checkout(request, sent: dict | None) -> dict:
    """
    The checkout's tracking: the cookie's first touch (else what the page sent)
    and, as last touch, what the page sent (it saw the latest landing URL),
    else the cookie's last touch.
    """
    stored = read_attribution(request)
    sent = clean_touch(sent or {})
    return checkout_tracking(first=stored.get("first") or sent, last=sent or stored.get("last"))


class AttributionMiddleware:
    """A landing URL carrying any tracking parameter updates the last touch; the first touch is kept."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.method != "GET" or not any(key in request.GET for key in TRACKING_KEYS):
            return response
        touch = clean_touch({key: request.GET.get(key) for key in TRACKING_KEYS})
        if not touch:
            return response
        stored = read_attribution(request)
        value = {"first": stored.get("first") or touch, "last": touch}
        response.set_signed_cookie(
            COOKIE_NAME,
            json.dumps(value, separators=(",", ":")),
            salt=_SALT,
            max_age=settings.ATTRIBUTION_COOKIE_DAYS * 24 * 3600,
            secure=settings.SESSION_COOKIE_SECURE,
            httponly=True,
            samesite="Lax",
        )
        return response
