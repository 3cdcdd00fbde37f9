"""Project middleware: the Content-Security-Policy, a clean 503 when the database is away, the gateway budget."""

import logging

from csp.middleware import CSPMiddleware, PolicyParts
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse
from django.template.loader import render_to_string
from django.utils.translation import gettext as _

from billing.gateways.base import gateway_budget
from config.api_errors import json_error
from integrations.pixels import pixels_for

logger = logging.getLogger(__name__)

# Django's admin and the API docs page set inline style attributes; nothing else needs them.
_INLINE_STYLE_PREFIXES = ("/admin/", "/api/docs/")


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    def get_policy_parts(self, request, response, report_only=False) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        update = dict(parts.update or {})
        if request.path_info.startswith(_INLINE_STYLE_PREFIXES):
            update["style-src"] = ["'unsafe-inline'"]
        if response.get("Content-Type", "").startswith("text/html") and not request.path_info.startswith("/admin/"):
            # The consented tracking pixels' origins, on the pages that load them (integrations.pixels).
            # Merged, not replaced: a page may widen the same directive for its own reason (the card tokenizer).
            for directive, origins in pixels_for(request).csp_update().items():
                update[directive] = sorted({*update.get(directive, []), *origins})
        parts.update = update or None
        return parts


class DatabaseUnavailableMiddleware:
    """
    A database that is restarting or unreachable answers 503 with a page (or
    the API's error shape) that says so, never a traceback. Data errors such
    as a violated constraint are not connection trouble and pass through.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        # OperationalError covers lost, refused and shut-down connections (and SQLite's
        # "database is locked"): all transient. IntegrityError and friends pass through.
        if not isinstance(exception, (OperationalError, InterfaceError)):
            return None
        logger.error("database unavailable", extra={"path": request.path, "error": type(exception).__name__})
        message = _("The service is temporarily unavailable. Please try again in a moment.")
        if request.path.startswith("/api/"):
            response = json_error("service_unavailable", message, 503)
        else:
            response = HttpResponse(render_to_string("503.html", {"message": message}), status=503)
        response["Retry-After"] = "5"
        return response



class GatewayBudgetMiddleware:
    """
    One budget for every payment-provider call a request makes, counted from
    the request's start (GATEWAY_REQUEST_BUDGET_SECONDS): a hanging provider
    costs a buyer a 503 within the budget, never a worker killed by gunicorn's
    timeout in the middle of a create.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        with gateway_budget():
            return self.get_response(request)
