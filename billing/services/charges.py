"""
Issuing the PIX charge of a checkout at the active gateway.

The checkout row is locked for the whole call so that two clicks (or two
tabs) on "pay with PIX" can never create two charges: the second waits, then
finds the transaction id the first stored and returns that charge. The lock
is held across one HTTP call bounded by the client's timeouts; that is the
price of "never two charges" without an idempotency key at the provider.
"""

from __future__ import annotations

import json
import logging
import uuid

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.documents import digits_only
from billing.exceptions import CheckoutNotFound, CheckoutNotPayable, InvalidInput
from billing.gateways import ChargeItem, ChargeRequest, Customer, GatewayUnavailable
from billing.gateways.junglepay import CreateUnconfirmed
from billing.gateways.sandbox import SANDBOX_OUTCOMES
from billing.models import Checkout, PaymentGateway
from billing.services.gateway_config import gateway_for_new_charge

logger = logging.getLogger(__name__)

# Marks a checkout whose create failed ambiguously: the next attempt looks the charge up first.
CREATE_UNCONFIRMED = "create_unconfirmed"


def charge_items(checkout: Checkout) -> tuple[ChargeItem, ...]:
    """The checkout's item snapshot as gateway items; one line for the total when they do not add up."""
    items = []
    for item in checkout.items or []:
        if not isinstance(item, dict):
            continue
        price = item.get("unit_price_cents", item.get("unitPrice", item.get("price_cents")))
        title = item.get("title") or item.get("name")
        if isinstance(price, int) and price >= 0 and title:
            items.append(ChargeItem(title=str(title)[:120], unit_price_cents=price, quantity=int(item.get("quantity") or 1)))
    if items and sum(i.unit_price_cents * i.quantity for i in items) == checkout.total_cents:
        return tuple(items)
    # An upgrade's credit (or an odd snapshot): one line for exactly what is charged.
    return (ChargeItem(title=checkout.plan.name[:120], unit_price_cents=checkout.total_cents),)


def charge_request(checkout: Checkout, *, gateway_config) -> ChargeRequest:
    return ChargeRequest(
        external_ref=str(checkout.public_id),
        amount_cents=checkout.total_cents,
        customer=Customer(
            name=checkout.customer_name,
            email=checkout.customer_email,
            document=digits_only(checkout.customer_document),
            phone=digits_only(checkout.customer_phone),
        ),
        items=charge_items(checkout),
        postback_url=gateway_config.postback_url,
        metadata={"checkout_id": str(checkout.public_id), "purpose": checkout.purpose},
    )


def issue_pix_charge(*, checkout_id, now=None) -> Checkout:
    """
    The checkout's PIX charge, created at the active gateway on the first call
    and returned as stored on every later one. Raises CheckoutNotFound,
    CheckoutNotPayable, GatewayUnavailable or GatewayRejected.
    """
    now = now or timezone.now()
    pending_error = None
    with transaction.atomic():
        checkout = Checkout.objects.select_for_update(of=("self",)).select_related("plan", "gateway").filter(public_id=checkout_id).first()
        if checkout is None:
            raise CheckoutNotFound(_("Checkout not found."))
        if checkout.gateway_transaction_id:
            return checkout  # the same charge, never a second one
        if checkout.status != Checkout.Status.PENDING:
            raise CheckoutNotPayable(_("This checkout can no longer be paid."))
        if checkout.payment_method != Checkout.Method.PIX:
            raise InvalidInput("payment_method", _("This checkout is not a PIX payment."), code="invalid_method")

        gateway = gateway_for_new_charge()
        request = charge_request(checkout, gateway_config=gateway.config)
        try:
            charge = None
            if checkout.gateway_status == CREATE_UNCONFIRMED and checkout.gateway_id == gateway.config.pk:
                # A previous create may have gone through after all: look before creating.
                charge = gateway.find_charge(external_ref=request.external_ref)
            if charge is None:
                charge = gateway.create_charge(request)
        except GatewayUnavailable as exc:
            if isinstance(exc, CreateUnconfirmed):
                # Committed on purpose (no raise inside the block): the mark must survive the error.
                checkout.gateway = gateway.config
                checkout.gateway_status = CREATE_UNCONFIRMED
                checkout.save(update_fields=["gateway", "gateway_status", "updated_at"])
            pending_error = exc
        else:
            if charge.amount_cents is not None and charge.amount_cents != checkout.total_cents:
                logger.error(
                    "gateway charge amount differs from checkout",
                    extra={"checkout": str(checkout.public_id), "charged": charge.amount_cents, "total": checkout.total_cents},
                )
            checkout.gateway = gateway.config
            checkout.gateway_transaction_id = charge.transaction_id
            checkout.gateway_status = charge.provider_status
            checkout.gateway_response = charge.raw
            checkout.pix_code = charge.pix_code
            checkout.pix_url = charge.pix_url[:500]
            checkout.pix_expires_at = charge.expires_at
            checkout.save(
                update_fields=[
                    "gateway",
                    "gateway_transaction_id",
                    "gateway_status",
                    "gateway_response",
                    "pix_code",
                    "pix_url",
                    "pix_expires_at",
                    "updated_at",
                ]
            )
            logger.info(
                "pix charge issued",
                extra={"checkout": str(checkout.public_id), "gateway": gateway.kind, "transaction": charge.transaction_id},
            )
    if pending_error is not None:
        raise pending_error
    return checkout


@transaction.atomic
def simulate_sandbox_event(*, checkout_id, outcome: str) -> bytes:
    """Change the sandbox's side of the charge and return the postback body it would send."""
    checkout = Checkout.objects.select_for_update().filter(public_id=checkout_id, gateway__kind=PaymentGateway.Kind.SANDBOX).first()
    if checkout is None or not checkout.gateway_transaction_id or not checkout.gateway_response:
        raise CheckoutNotPayable(_("Create the PIX charge first."), code="no_charge")
    provider_status = SANDBOX_OUTCOMES[outcome]
    current = checkout.gateway_response.get("status")
    if provider_status == "refunded" and current != "paid":
        raise CheckoutNotPayable(_("Only a paid charge can be refunded."), code="not_paid")
    if provider_status in ("paid", "refused", "expired") and current not in ("waiting_payment", provider_status):
        raise CheckoutNotPayable(_("This charge is no longer waiting for payment."), code="not_pending")
    transaction_data = dict(checkout.gateway_response)
    transaction_data["status"] = provider_status
    if provider_status == "paid":
        transaction_data["paidAt"] = timezone.now().isoformat()
    checkout.gateway_response = transaction_data
    checkout.save(update_fields=["gateway_response", "updated_at"])
    postback = {
        "id": f"sbx-{uuid.uuid4().hex}",
        "type": "transaction",
        "objectId": str(checkout.gateway_transaction_id),
        "url": "",
        "data": transaction_data,
    }
    return json.dumps(postback).encode()
