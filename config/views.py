"""Error pages: JSON under /api/, templates elsewhere; never a stack trace."""

from django.shortcuts import render
from django.utils.translation import gettext as _

from config.api_errors import json_error


def not_found(request, exception=None):
    if request.path.startswith("/api/"):
        return json_error("not_found", _("Not found."), 404)
    return render(request, "404.html", status=404)


def server_error(request):
    if request.path.startswith("/api/"):
        return json_error("server_error", _("Something went wrong on our side. Please try again."), 500)
    return render(request, "500.html", status=500)
