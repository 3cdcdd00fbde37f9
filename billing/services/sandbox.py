"""
The sandbox gateway's test buttons (`POST /api/checkout/<id>/simulate`, `make run` only): the sandbox's
side of a charge changes as a real gateway's would, and the postback it would send is returned, for
the API door to deliver through the ordinary webhook path. Nothing here is reached with a real gateway.
"""

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.exceptions import CheckoutNotPayable
from billing.gateways.sandbox import SANDBOX_OUTCOMES, sandbox_postback
from billing.models import Checkout, PaymentGateway


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
    if provider_status in ("paid", "refused", "expired") and current not in ("waiting_payment", "processing", provider_status):
        raise CheckoutNotPayable(_("This charge is no longer waiting for payment."), code="not_pending")
    transaction_data = dict(checkout.gateway_response)
    transaction_data["status"] = provider_status
    if provider_status == "paid":
        transaction_data["paidAt"] = timezone.now().isoformat()
    checkout.gateway_response = transaction_data
    checkout.save(update_fields=["gateway_response", "updated_at"])
    return sandbox_postback(transaction_data, transaction_id=checkout.gateway_transaction_id)
