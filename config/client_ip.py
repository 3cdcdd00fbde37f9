"""
The one client address of a request (contract §2, `TRUSTED_PROXIES`).

Every throttle, the login lockout and the log lines ask `client_ip(request)`.
Each reverse proxy in front of the site appends the address it received the
request from to `X-Forwarded-For`, so with N trusted proxies the client is the
N-th entry from the right: everything to its left was written by the client
itself (or by proxies we do not run) and is never believed. With 0 proxies the
header is ignored altogether and the address is the socket's, `REMOTE_ADDR`.
"""

import ipaddress

from django.conf import settings

UNKNOWN = "unknown"


def _valid(value: str) -> str | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # "[2001:db8::1]:443"
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # "203.0.113.7:51234"
        value = value.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def client_ip(request) -> str:
    """The client's address: `TRUSTED_PROXIES` hops from the right of X-Forwarded-For, else REMOTE_ADDR."""
    meta = request.META  # a DRF Request hands this through to Django's
    remote = meta.get("REMOTE_ADDR") or UNKNOWN
    hops = settings.TRUSTED_PROXIES
    if hops <= 0:
        return remote
    entries = [entry for entry in meta.get("HTTP_X_FORWARDED_FOR", "").split(",") if entry.strip()]
    if len(entries) < hops:
        # Fewer entries than proxies: the request did not come through all of them
        # (a health check straight to the app server); the socket's peer is the client.
        return remote
    return _valid(entries[-hops]) or remote
