"""
The language a customer's e-mails go out in: the one they chose on the site
(the language switch, remembered on their account), else the site's default,
pt-BR. E-mails are rendered whole inside `translation.override(...)` of it, so
text and dates never mix languages, whatever language the sending process
(a request in another language, a worker) has active.
"""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils.translation import get_supported_language_variant


def supported(code: str | None) -> str | None:
    if not code:
        return None
    try:
        return get_supported_language_variant(code)
    except LookupError:
        return None


def language_for(user) -> str:
    return supported(getattr(user, "language", "")) or settings.LANGUAGE_CODE


def languages_for_emails(emails) -> dict[str, str]:
    """{lower-cased e-mail: language} for many recipients in one query; unknown ones get the default."""
    wanted = {email.lower() for email in emails}
    chosen = dict(get_user_model().objects.filter(email__in=wanted).exclude(language="").values_list("email", "language"))
    return {email: supported(chosen.get(email)) or settings.LANGUAGE_CODE for email in wanted}


def remember_language(user, code: str | None) -> None:
    """Keep the customer's explicit choice on the account (an unsupported code is ignored)."""
    language = supported(code)
    if user is None or not user.is_authenticated or language is None or user.language == language:
        return
    user.language = language
    get_user_model().objects.filter(pk=user.pk).update(language=language)


def remember_language_at_login(sender, request, user, **kwargs) -> None:
    if request is not None:
        remember_language(user, request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME))
