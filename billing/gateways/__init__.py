"""
Payment gateways: one interface (`base.Gateway`), one module per provider,
and the registry below that builds the one in use from its PaymentGateway row.
"""

from __future__ import annotations

from billing.exceptions import GatewayError, GatewayRejected, GatewayUnavailable  # noqa: F401 - the package's public names
from billing.gateways.base import (  # noqa: F401 - the package's public names
    NO_GATEWAY_MESSAGE,
    Card,
    CardChargeRequest,
    Charge,
    ChargeItem,
    ChargeRequest,
    ChargeStatus,
    Customer,
    Gateway,
    Notification,
    NotificationInvalid,
    RefundResult,
    Refusal,
)
from billing.gateways.dias import DiasGateway
from billing.gateways.junglepay import JunglePayGateway
from billing.gateways.sandbox import SandboxGateway, sandbox_allowed
from billing.models import PaymentGateway


def gateway_class(kind: str) -> type[Gateway]:
    Kind = PaymentGateway.Kind
    return {Kind.SANDBOX: SandboxGateway, Kind.JUNGLEPAY: JunglePayGateway, Kind.DIAS: DiasGateway}[kind]


def gateway_for(config) -> Gateway:
    """The implementation for a PaymentGateway row."""
    return gateway_class(config.kind)(config)


def get_active_gateway() -> Gateway:
    """
    The gateway that serves our own checkout: the one active internal
    PaymentGateway; a sandbox serves only where it is allowed (DEBUG or
    SANDBOX_GATEWAY_ALLOWED). Reads only: with none active it raises
    GatewayUnavailable (`services.gateway_config.gateway_for_new_charge`
    is the write that switches the sandbox on for `make run` and the tests).
    """
    return serving_gateway(active_config())


def active_config() -> PaymentGateway | None:
    """The one active internal PaymentGateway row, if any (one query)."""
    return PaymentGateway.objects.filter(is_active=True, kind__in=PaymentGateway.INTERNAL_KINDS).first()


def serving_gateway(config: PaymentGateway | None) -> Gateway:
    """The gateway for the active row `config`, if it may serve here; else GatewayUnavailable."""
    if config is None or (config.kind == PaymentGateway.Kind.SANDBOX and not sandbox_allowed()):
        raise GatewayUnavailable(NO_GATEWAY_MESSAGE)
    return gateway_for(config)
