"""
Payment gateways: one interface (`base.Gateway`), one module per provider,
and the registry below that builds the one in use from its PaymentGateway row.
"""

from __future__ import annotations

from billing.gateways.base import (  # noqa: F401 - the package's public names
    NO_GATEWAY_MESSAGE,
    Charge,
    ChargeItem,
    ChargeRequest,
    ChargeStatus,
    Customer,
    Gateway,
    GatewayError,
    GatewayRejected,
    GatewayUnavailable,
    Notification,
    NotificationInvalid,
)

def gateway_class(kind: str) -> type[Gateway]:
    from billing.gateways.dias import DiasGateway
    from billing.gateways.junglepay import JunglePayGateway
    from billing.gateways.sandbox import SandboxGateway

    return {"sandbox": SandboxGateway, "junglepay": JunglePayGateway, "dias": DiasGateway}[kind]


def gateway_for(config) -> Gateway:
    """The implementation for a PaymentGateway row."""
    return gateway_class(config.kind)(config)


def get_active_gateway() -> Gateway:
    """
    The gateway that serves our own checkout: the one active internal
    PaymentGateway. With none active, the sandbox is activated and serves when it is
    allowed (DEBUG or SANDBOX_GATEWAY_ALLOWED): the default of `make run`
    and of the tests. A sandbox that is not allowed never serves.
    """
    from billing.gateways.sandbox import sandbox_allowed
    from billing.models import PaymentGateway

    config = PaymentGateway.objects.filter(is_active=True, kind__in=PaymentGateway.INTERNAL_KINDS).first()
    if config is None and sandbox_allowed():
        config = _activate_default_sandbox()
    if config is None or (config.kind == PaymentGateway.Kind.SANDBOX and not sandbox_allowed()):
        raise GatewayUnavailable(NO_GATEWAY_MESSAGE)
    return gateway_for(config)


def postback_url(config) -> str:
    """The URL to paste into the provider: SITE_URL + webhook path + ?token= (one definition, on the model)."""
    return config.postback_url


def _activate_default_sandbox():
    """Nothing active where fake payments are allowed: the sandbox becomes the active gateway (and says so)."""
    import logging

    from django.db import IntegrityError, transaction

    from billing.models import PaymentGateway

    try:
        with transaction.atomic():
            config, _ = PaymentGateway.objects.update_or_create(kind=PaymentGateway.Kind.SANDBOX, defaults={"is_active": True})
    except IntegrityError:
        # Someone activated a gateway meanwhile (one active, enforced by the database): use theirs.
        return PaymentGateway.objects.filter(is_active=True, kind__in=PaymentGateway.INTERNAL_KINDS).first()
    logging.getLogger(__name__).warning("no payment gateway was active: the sandbox was activated")
    return config
