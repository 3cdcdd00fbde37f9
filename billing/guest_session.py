"""
Which guest checkouts this browser created (contract §3: the guest who pays
in the browser that created the checkout is signed in there, never in another
client that merely holds the id). A signed, HttpOnly cookie rather than the
session: a guest's purchase must not start a session (the per-session
checkout throttle would then count every buyer behind one shared client as
one). A few ids at most; forged or tampered cookies read as none.
"""

from django.conf import settings
from django.core import signing

COOKIE = "cf_guest_checkouts"
SALT = "billing.guest-checkouts"
KEPT = 5
MAX_AGE = 24 * 3600  # the sign-in window (billing.selectors.GUEST_SIGN_IN_WINDOW)


def _read(request) -> list[str]:
    try:
        value = request.get_signed_cookie(COOKIE, salt=SALT, max_age=MAX_AGE)
    except (KeyError, signing.BadSignature):
        return []
    return [part for part in value.split(",") if part]


def _write(response, ids: list[str]) -> None:
    if not ids:
        response.delete_cookie(COOKIE, samesite="Lax")
        return
    response.set_signed_cookie(
        COOKIE, ",".join(ids), salt=SALT, max_age=MAX_AGE, httponly=True, samesite="Lax", secure=settings.SESSION_COOKIE_SECURE
    )


def remember_guest_checkout(request, response, public_id) -> None:
    ids = [value for value in _read(request) if value != str(public_id)]
    _write(response, (ids + [str(public_id)])[-KEPT:])


def created_here(request, public_id) -> bool:
    return str(public_id) in _read(request)


def forget_guest_checkout(request, response, public_id) -> None:
    _write(response, [value for value in _read(request) if value != str(public_id)])
