"""System checks of billing: dangerous configuration refuses to pass silently."""

from django.conf import settings
from django.core.checks import Error, Warning, register

from config.seller import missing_settings


@register("billing")
def seller_named(app_configs=None, **kwargs):
    """billing.W001: every page's footer and every receipt must name who sells (Decreto 7.962/2013)."""
    missing = missing_settings()
    if settings.DEBUG or not missing:
        return []
    return [
        Warning(
            f"Who sells is not fully set: {', '.join(missing)}.",
            hint="Set SELLER_NAME, SELLER_DOCUMENT (CNPJ), SELLER_ADDRESS and SUPPORT_EMAIL: footers and receipts show them.",
            id="billing.W001",
        )
    ]

from billing.models import PaymentGateway


@register("billing", deploy=False)
def sandbox_gateway_not_in_production(app_configs=None, databases=None, **kwargs):
    """
    billing.E001: the sandbox fakes payments; with DEBUG off it must be explicitly allowed.

    It reads the database, so like Django's own database checks it runs only when
    databases are named: `migrate` (every deploy runs it) and `check --database default`.
    """
    if settings.DEBUG or settings.SANDBOX_GATEWAY_ALLOWED or not databases:
        return []
    try:
        active = PaymentGateway.objects.filter(kind=PaymentGateway.Kind.SANDBOX, is_active=True).exists()
    except Exception:  # noqa: BLE001 - no database yet (before migrate), or none allowed here (a test worker)
        return []
    if not active:
        return []
    return [
        Error(
            "The sandbox payment gateway is active while DEBUG is off.",
            hint="Activate a real gateway (manage.py configure_gateway junglepay --secret-key ... --activate), "
            "or set SANDBOX_GATEWAY_ALLOWED=true if fake payments are really wanted here.",
            obj="billing.PaymentGateway",
            id="billing.E001",
        )
    ]
