"""The legal pages, the cookie preferences and the account page's "delete my account" form."""

import secrets

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.gate import safe_next
from config.errors import DomainError
from legal import selectors, services
from legal.consent import COOKIE_MAX_AGE, COOKIE_NAME, cookie_value, read_consent
from legal.models import LegalDocument


@login_required
@require_POST
def account_delete(request):
    try:
        services.delete_account(user=request.user, password=request.POST.get("password", ""))
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("billing:account")
    logout(request)
    messages.success(request, _("Your account was deleted and your personal data erased."))
    return redirect("/")


def _legal_page(request, kind: str):
    document = selectors.current_document(kind=kind)
    if document is None:
        raise Http404
    title, body = document.text_for(translation.get_language())
    paragraphs = [p.strip() for p in body.replace("\r\n", "\n").split("\n\n") if p.strip()]
    return render(request, "legal/document.html", {"document": document, "title": title, "paragraphs": paragraphs})


@require_GET
def terms(request):
    return _legal_page(request, LegalDocument.Kind.TERMS)


@require_GET
def privacy(request):
    return _legal_page(request, LegalDocument.Kind.PRIVACY)


@require_http_methods(["GET", "POST"])
def cookie_preferences(request):
    """The banner's form and the footer's "Cookie preferences": accept, reject or choose. No script needed."""
    state = read_consent(request)
    next_url = safe_next(request, request.POST.get("next") or request.GET.get("next"))
    if request.method == "GET":
        return render(request, "legal/cookies.html", {"next": next_url, "state": state})
    choice = request.POST.get("choice")
    if choice == "accept":
        analytics = marketing = True
    elif choice == "reject":
        analytics = marketing = False
    else:
        analytics, marketing = request.POST.get("analytics") == "on", request.POST.get("marketing") == "on"
    visitor_id = state.visitor_id or secrets.token_hex(16)
    services.record_consent(
        visitor_id=visitor_id, analytics=analytics, marketing=marketing, user=request.user,
        privacy_version=selectors.current_version(kind=LegalDocument.Kind.PRIVACY),
    )
    response = redirect(next_url)
    response.set_cookie(
        COOKIE_NAME, cookie_value(visitor_id=visitor_id, analytics=analytics, marketing=marketing),
        max_age=COOKIE_MAX_AGE, samesite="Lax", secure=request.is_secure(), httponly=True,
    )
    return response
