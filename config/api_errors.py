"""
One error shape for the whole API (contract §3):

    {"error": {"code": "...", "message": "...", "fields": {...}}}

Domain errors raised by services (config/errors.py, billing/exceptions.py) carry
no HTTP; they become API errors here, in one place (`STATUS_BY_ERROR`), so
views never translate exceptions themselves.
"""

import logging

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from django.utils.translation import gettext as _
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from config.errors import (
    Conflict,
    DomainError,
    Forbidden,
    Invalid,
    NotFound,
    PaymentRefused,
    TooManyRequests,
    Unavailable,
    UpstreamFailed,
)

logger = logging.getLogger(__name__)


# What each kind of domain error means over HTTP; the first class of an error's MRO found here wins.
STATUS_BY_ERROR = {
    Invalid: status.HTTP_400_BAD_REQUEST,
    NotFound: status.HTTP_404_NOT_FOUND,
    Forbidden: status.HTTP_403_FORBIDDEN,
    Conflict: status.HTTP_409_CONFLICT,
    PaymentRefused: status.HTTP_402_PAYMENT_REQUIRED,
    TooManyRequests: status.HTTP_429_TOO_MANY_REQUESTS,
    Unavailable: status.HTTP_503_SERVICE_UNAVAILABLE,
    UpstreamFailed: status.HTTP_502_BAD_GATEWAY,
    DomainError: status.HTTP_400_BAD_REQUEST,
}


def status_for(exc: DomainError) -> int:
    return next(STATUS_BY_ERROR[cls] for cls in type(exc).__mro__ if cls in STATUS_BY_ERROR)


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
        return Response(error_body(exc.code, exc.message, exc.fields), status=status_for(exc))
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
