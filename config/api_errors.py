"""
One error shape for the whole API (contract §3):

    {"error": {"code": "...", "message": "...", "fields": {...}}}

Domain errors raised by services become API errors here, in one place, so
views never translate exceptions themselves.
"""

import logging

from django.core.exceptions import PermissionDenied, ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from django.utils.translation import gettext as _
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger(__name__)


class DomainError(Exception):
    """Base for errors a service raises on purpose; `code` is stable, `message` is for people."""

    code = "invalid_request"
    status_code = status.HTTP_400_BAD_REQUEST

    def __init__(self, message: str = "", *, code: str | None = None, status_code: int | None = None, fields=None):
        super().__init__(message)
        self.message = message or str(_("The request could not be completed."))
        if code:
            self.code = code
        if status_code:
            self.status_code = status_code
        self.fields = fields or {}


def error_body(code: str, message: str, fields: dict | None = None) -> dict:
    return {"error": {"code": code, "message": str(message), "fields": fields or {}}}


def _flatten(detail):
    if isinstance(detail, dict):
        return {key: _flatten(value) for key, value in detail.items()}
    if isinstance(detail, list):
        return [str(item) if not isinstance(item, (dict, list)) else _flatten(item) for item in detail]
    return [str(detail)]


_CODES = {
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "throttled",
    exceptions.ParseError: "parse_error",
}


def exception_handler(exc, context):
    if isinstance(exc, DomainError):
        return Response(error_body(exc.code, exc.message, exc.fields), status=exc.status_code)
    if isinstance(exc, (OperationalError, InterfaceError)):
        # The database is restarting or unreachable: transient, say so (see config.middleware).
        logger.error("database unavailable", extra={"view": type(context.get("view")).__name__})
        response = Response(
            error_body("service_unavailable", _("The service is temporarily unavailable. Please try again in a moment.")),
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
        response["Retry-After"] = "5"
        return response
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(detail=exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        # Unexpected: log it with its traceback, answer without one.
        logger.exception("unhandled API error", extra={"view": type(context.get("view")).__name__})
        return Response(
            error_body("server_error", _("Something went wrong on our side. Please try again.")),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )

    if isinstance(exc, exceptions.ValidationError):
        fields = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        fields = _flatten(fields)
        first = next(iter(fields.values()), [""])
        message = first[0] if isinstance(first, list) and first and isinstance(first[0], str) else _("Invalid input.")
        response.data = error_body("invalid", message, fields)
    else:
        code = _CODES.get(type(exc)) or getattr(exc, "default_code", "error")
        response.data = error_body(code, getattr(exc, "detail", str(exc)))
    return response


def json_error(code: str, message: str, status_code: int, fields: dict | None = None) -> JsonResponse:
    """The same shape for plain Django views (404/500 handlers, webhooks before DRF)."""
    return JsonResponse(error_body(code, message, fields), status=status_code)
