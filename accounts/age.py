"""
Age assurance (contract §2 MIN_AGE, AGE_VERIFICATION; §8: access needs a confirmed age).

`AGE_VERIFICATION` is the policy: `declaration` confirms the age from the
birth date the person gives (sign-up, checkout, or the age page); any other
value names an age-verification provider adapter (document + selfie) in
PROVIDERS. Every adapter speaks one small interface:

- `start(verification, return_url) -> str`: where to send the person (the
  provider's page or widget); `verification.reference` is our id for it;
- the provider sends the person (or a server call) back to
  `/accounts/age/callback/<provider>/`; `parse_callback(request)` reads
  `(reference, passed)` from it, verifying whatever the provider signs.

Only the outcome and the provider's reference are stored (AgeVerification),
never the document images. The `sandbox` adapter is a page of ours with
"pass" and "fail" buttons, for development and tests.
"""

from __future__ import annotations

from datetime import date

from django.conf import settings
from django.urls import reverse
from django.utils.translation import gettext as _

from config.errors import Invalid

DECLARATION = "declaration"


class UnderAge(Invalid):
    code = "under_age"


def age_on(birth_date: date, today: date) -> int:
    return today.year - birth_date.year - ((today.month, today.day) < (birth_date.month, birth_date.day))


def require_min_age(birth_date: date | None, *, today: date) -> None:
    """A birth date that makes the person at least MIN_AGE today, else UnderAge naming `birth_date` (400)."""
    if birth_date is None:
        message = _("Enter your birth date.")
        raise Invalid(message, code="birth_date_required", fields={"birth_date": [message]})
    if birth_date > today or age_on(birth_date, today) < settings.MIN_AGE:
        message = _("You must be at least %(age)d years old.") % {"age": settings.MIN_AGE}
        raise UnderAge(message, fields={"birth_date": [message]})


class AgeProvider:
    """The interface of an age-verification provider adapter."""

    name = ""

    def start(self, verification, *, return_url: str) -> str:  # pragma: no cover - interface
        raise NotImplementedError

    def parse_callback(self, request) -> tuple[str, bool]:  # pragma: no cover - interface
        raise NotImplementedError


class SandboxAgeProvider(AgeProvider):
    """Passes or fails on demand: its "provider page" is ours, with two buttons."""

    name = "sandbox"

    def start(self, verification, *, return_url: str) -> str:
        return reverse("accounts:age_sandbox", args=[verification.reference])

    def parse_callback(self, request) -> tuple[str, bool]:
        return request.POST.get("reference", ""), request.POST.get("result") == "pass"


PROVIDERS: dict[str, type[AgeProvider]] = {"sandbox": SandboxAgeProvider}


def policy() -> str:
    return settings.AGE_VERIFICATION


def provider_for(name: str) -> AgeProvider:
    return PROVIDERS[name]()
