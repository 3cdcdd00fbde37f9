"""
The withdrawal door shared by the API and the account page: the service
(billing.services.withdraw_subscription) in its own transaction, then, after
commit, each refund asked of the checkout's gateway, outside any lock.

A gateway with a refund API (the sandbox) refunds at once and its `refunded`
postback is delivered through the webhook path (verify → store → process),
like the sandbox's simulate buttons: the refund reaches our records by
`refund_checkout`, the one refund path. A gateway without one (JunglePay,
whose API documents no refund endpoint) leaves the RefundRequest pending for
staff (admin: refund requests, with their deadline); a gateway that refuses
or fails does too, and says so in the log.
"""

from __future__ import annotations

import logging
from datetime import datetime

from billing import services
from billing.gateways import GatewayError, gateway_for
from billing.models import Checkout, CheckoutCharge, PaymentGateway, RefundRequest, Subscription
from billing.services import Withdrawal
from billing.webhooks import receive_webhook

logger = logging.getLogger(__name__)


def withdraw(*, subscription: Subscription, now: datetime | None = None) -> Withdrawal:
    withdrawal = services.withdraw_subscription(subscription=subscription, now=now)
    # Only the requests this call opened are asked of the gateway: a repeat (a double click, a second
    # tab racing this one, serialised by the subscription's lock) opens none and asks nothing.
    for refund in withdrawal.refunds:
        if refund.pk in withdrawal.opened and refund.status == RefundRequest.Status.PENDING:
            request_gateway_refund(refund)
    return Withdrawal(
        subscription=withdrawal.subscription,
        refunds=list(RefundRequest.objects.filter(pk__in=[r.pk for r in withdrawal.refunds]).order_by("pk")),
        opened=withdrawal.opened,
    )


def paid_charge(checkout: Checkout) -> tuple[PaymentGateway | None, str]:
    """
    The gateway and transaction whose payment paid `checkout`: the one a
    refund must name. It may be a replaced QR (CheckoutCharge), not the
    checkout's latest charge, and may have lived at the gateway before a switch.
    """
    transaction_id = checkout.paid_transaction_id or checkout.gateway_transaction_id
    if not transaction_id:
        return None, ""
    if transaction_id != checkout.gateway_transaction_id:
        previous = CheckoutCharge.objects.select_related("gateway").filter(checkout=checkout, transaction_id=transaction_id).first()
        if previous is not None:
            return previous.gateway, transaction_id
    return checkout.gateway, transaction_id


def request_gateway_refund(refund: RefundRequest) -> bool:
    """Ask the gateway of the paying transaction to refund; True when it did (its postback applied), False: staff will."""
    config, transaction_id = paid_charge(refund.checkout)
    if config is None or not transaction_id:
        return False
    try:
        result = gateway_for(config).refund(transaction_id, refund.amount_cents)
    except GatewayError as exc:
        logger.warning("gateway refused the refund; left for staff", extra={"refund": refund.pk, "error": str(exc)})
        return False
    if result is None:
        logger.info("gateway has no refund API; left for staff", extra={"refund": refund.pk, "gateway": config.kind})
        return False
    if result.postback:
        response = receive_webhook(
            provider=config.kind,
            token=config.postback_token,
            body=result.postback,
            headers={"Content-Type": "application/json"},
        )
        logger.info("refund postback delivered", extra={"refund": refund.pk, "webhook": response.body})
    return True
