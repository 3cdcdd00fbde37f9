"""
Domain errors: what a service raises on purpose. They carry a stable `code`, a
message for people and the fields at fault, and no HTTP: `config/api_errors.py`
maps each kind below to a status code.
"""

from django.utils.translation import gettext as _


class DomainError(Exception):
    """Bad input or a request the rules refuse (400)."""

    code = "invalid_request"

    def __init__(self, message: str = "", *, code: str | None = None, fields=None):
        super().__init__(message)
        self.message = message or str(_("The request could not be completed."))
        if code:
            self.code = code
        self.fields = fields or {}


class Invalid(DomainError):
    """What the caller sent is wrong; they can fix it."""

    code = "invalid"


class NotFound(DomainError):
    code = "not_found"


class Forbidden(DomainError):
    """The caller may not do this (403); no detail about what they asked for."""

    code = "forbidden"


class Conflict(DomainError):
    """The thing exists, but its state forbids this now."""

    code = "conflict"


class PaymentRefused(DomainError):
    """The payer's bank (or the provider's antifraud) said no: another card or method may work (402)."""

    code = "payment_refused"


class TooManyRequests(DomainError):
    code = "throttled"


class Unavailable(DomainError):
    """Something we depend on is down: try again later."""

    code = "service_unavailable"


class UpstreamFailed(DomainError):
    """A provider answered, unusably."""

    code = "upstream_error"
