from django.conf import settings


def sandbox_allowed() -> bool:
    """Whether the site may use its sandboxes (payment gateway, age provider): in DEBUG, or a test site that says so."""
    return bool(settings.DEBUG or settings.SANDBOX_GATEWAY_ALLOWED)
