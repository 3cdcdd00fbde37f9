"""Which gateway serves our checkout: switching, and the postback token."""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction
from django.utils import timezone

from billing.gateways import Gateway, active_config, gateway_for, serving_gateway
from billing.gateways.sandbox import sandbox_allowed
from billing.models import PaymentGateway

logger = logging.getLogger(__name__)


def gateway_for_new_charge() -> Gateway:
    """
    The active gateway, for issuing a charge. Where fake payments are allowed
    and nothing is active (`make run`, the tests), the sandbox is switched on
    first, and the log says so.
    """
    active = active_config()
    if active is None and sandbox_allowed():
        try:
            with transaction.atomic():
                config, _created = PaymentGateway.objects.update_or_create(
                    kind=PaymentGateway.Kind.SANDBOX, defaults={"is_active": True}
                )
        except IntegrityError:
            # Someone activated a gateway meanwhile (one active, enforced by the database): use theirs.
            active = active_config()
        else:
            logger.warning("no payment gateway was active: the sandbox was activated")
            return gateway_for(config)
    return serving_gateway(active)


@transaction.atomic
def activate_gateway(*, gateway: PaymentGateway) -> PaymentGateway:
    """
    Makes `gateway` active. For an internal kind (sandbox, JunglePay) it
    becomes the one gateway of our checkout: the others are switched off first,
    in the same transaction (the database also refuses two at once).
    """
    gateway = PaymentGateway.objects.select_for_update().get(pk=gateway.pk)
    if gateway.is_active:
        return gateway
    if gateway.is_internal:
        PaymentGateway.objects.select_for_update().filter(
            kind__in=PaymentGateway.INTERNAL_KINDS, is_active=True
        ).exclude(pk=gateway.pk).update(is_active=False)
    gateway.is_active = True
    gateway.save(update_fields=["is_active", "updated_at"])
    return gateway


@transaction.atomic
def deactivate_gateway(*, gateway: PaymentGateway) -> PaymentGateway:
    gateway = PaymentGateway.objects.select_for_update().get(pk=gateway.pk)
    if gateway.is_active:
        gateway.is_active = False
        gateway.save(update_fields=["is_active", "updated_at"])
    return gateway


@transaction.atomic
def rotate_postback_token(*, gateway: PaymentGateway, now=None) -> PaymentGateway:
    """
    A new token for the postback URL (paste the new one). Charges already
    issued keep posting to the URL they were created with, so the previous
    token stays accepted for PaymentGateway.POSTBACK_TOKEN_GRACE; a second
    rotation inside that window retires the first token at once.
    """
    gateway = PaymentGateway.objects.select_for_update().get(pk=gateway.pk)
    gateway.rotate_postback_token(now=now or timezone.now())
    gateway.save(update_fields=["postback_token", "previous_postback_token", "postback_token_rotated_at", "updated_at"])
    return gateway
