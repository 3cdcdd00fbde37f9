"""
Failed-login throttling, per client IP and per e-mail, in the cache.

Counting failures (not attempts) lets a person who types the password right
in again; counting per e-mail as well as per IP stops one address being
guessed from many IPs. The answer is the same whether or not the e-mail has
an account, so the throttle reveals nothing.
"""

import hashlib
import logging

from django.conf import settings
from django.core.cache import cache

from config.client_ip import client_ip

logger = logging.getLogger(__name__)


def _keys(request, email: str) -> list[str]:
    email_digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
    return [f"login-fail:ip:{client_ip(request)}", f"login-fail:email:{email_digest}"]


def is_login_blocked(request, email: str) -> bool:
    limit = settings.LOGIN_THROTTLE_ATTEMPTS
    try:
        counts = cache.get_many(_keys(request, email))
    except Exception:  # noqa: BLE001 - a cache outage must not lock everyone out
        return False
    blocked = any(count >= limit for count in counts.values())
    if blocked:
        logger.warning("login blocked after repeated failures", extra={"client_ip": client_ip(request)})
    return blocked


def record_login_failure(request, email: str) -> None:
    window = settings.LOGIN_THROTTLE_WINDOW
    logger.info("login failed", extra={"client_ip": client_ip(request)})
    for key in _keys(request, email):
        try:
            if not cache.add(key, 1, timeout=window):
                cache.incr(key)
        except Exception:  # noqa: BLE001 - the cache (Redis) is down: counting failures must never fail a login
            pass


def clear_login_failures(request, email: str) -> None:
    try:
        cache.delete_many(_keys(request, email)[1:])
    except Exception:  # noqa: BLE001 - the cache (Redis) is down: counting failures must never fail a login
        pass


def is_rate_limited(request, *, scope: str, limit: int, window: int) -> bool:
    """Count one hit for this client IP in `scope`; True once more than `limit` hits fall in `window` seconds."""
    key = f"rate:{scope}:{client_ip(request)}"
    try:
        if cache.add(key, 1, timeout=window):
            return False
        limited = cache.incr(key) > limit
    except Exception:  # noqa: BLE001 - a cache outage must not lock everyone out
        return False
    if limited:
        logger.warning("rate limited", extra={"scope": scope, "client_ip": client_ip(request)})
    return limited
