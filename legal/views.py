"""The account page's "delete my account" form (the download is the API's GET, linked from the page)."""

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from config.errors import DomainError
from legal import services


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
