"""
The 18+ gate before creator pages (contract §4), and the age question for
accounts without a confirmed age (contract §8).

- A visitor who is not logged in sees the gate ("I am 18 or older") until
  they confirm; the answer is remembered for the session. Search engines get
  the gate too: there is no user-agent exception.
- A logged-in account whose age is not confirmed (one that existed before
  age assurance, or a marketplace buyer) is sent to the age page first; its
  subscription is untouched, and access comes back once the age is confirmed.
"""

from functools import wraps
from urllib.parse import urlencode

from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

SESSION_KEY = "age_gate_passed"


def visitor_passed_gate(request) -> bool:
    user = request.user
    if user.is_authenticated:
        return user.age_confirmed_at is not None
    return bool(request.session.get(SESSION_KEY))


def safe_next(request, value: str | None, default: str = "/") -> str:
    if value and url_has_allowed_host_and_scheme(value, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return value
    return default


def age_gate(view):
    """Wraps a creator page: the gate for visitors, the age page for accounts without a confirmed age."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if visitor_passed_gate(request):
            return view(request, *args, **kwargs)
        if request.user.is_authenticated:
            return redirect(f"{reverse('accounts:age')}?{urlencode({'next': request.get_full_path()})}")
        response = render(request, "accounts/age_gate.html", {"next": request.get_full_path()})
        response["X-Robots-Tag"] = "noindex"
        response["Cache-Control"] = "private, no-store"
        return response

    return wrapped
