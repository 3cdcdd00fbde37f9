"""
The cookie consent state (contract §4): read from the `cf_consent` cookie,
which holds a random visitor id and the choice. Essential cookies (session,
CSRF, language, this one) need no consent; analytics and marketing (tracking
pixels) stay off until accepted. Templates get `consent` (context processor);
the pixels (issue 14) load only when `consent.marketing` / `consent.analytics`.
"""

from __future__ import annotations

from dataclasses import dataclass

COOKIE_NAME = "cf_consent"
COOKIE_MAX_AGE = 180 * 24 * 3600  # ask again after six months


@dataclass(frozen=True)
class ConsentState:
    decided: bool = False
    analytics: bool = False
    marketing: bool = False
    visitor_id: str = ""


def read_consent(request) -> ConsentState:
    """`<visitor id>.<a><m>` with a/m as 0/1; anything else is "not decided"."""
    raw = request.COOKIES.get(COOKIE_NAME, "")
    visitor_id, _dot, flags = raw.partition(".")
    if not visitor_id or len(flags) != 2 or set(flags) - {"0", "1"} or not visitor_id.isalnum() or len(visitor_id) > 64:
        return ConsentState()
    return ConsentState(decided=True, analytics=flags[0] == "1", marketing=flags[1] == "1", visitor_id=visitor_id)


def cookie_value(*, visitor_id: str, analytics: bool, marketing: bool) -> str:
    return f"{visitor_id}.{int(analytics)}{int(marketing)}"


def consent(request):
    """Context processor: the visitor's consent state, for the banner and the pixels."""
    return {"consent": read_consent(request)}
