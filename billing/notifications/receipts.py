"""
Receipts (contract §3): every confirmed payment, ours or the marketplace's, e-mailed to its payer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from celery import shared_task
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from accounts.language import languages_for_emails
from billing.models import Checkout, Subscription
from billing.notifications.retry import EMAIL_RETRY
from billing.receipts import Receipt, build_marketplace_receipt, build_receipt, has_receipt
from config.emails import transactional_email
from config.tasks import enqueue

logger = logging.getLogger(__name__)

def queue_receipt_after_commit(*, checkout_pk: int) -> None:
    """Called by the service that records a payment: once it commits, its receipt goes out (a retried task)."""

    def queue():
        try:
            enqueue(send_receipt_task, checkout_pk=checkout_pk)
        except Exception:
            logger.exception("receipt not queued", extra={"checkout_pk": checkout_pk})

    transaction.on_commit(queue)


def send_receipt(*, checkout_pk: int) -> bool:
    """
    The receipt of one confirmed payment (billing/receipts.py) to its payer,
    HTML with a plain-text part, whole in the payer's language. Sent once per
    checkout: a repeated task finds `receipt_sent_at` set and sends nothing.
    """
    checkout = Checkout.objects.select_related("plan", "coupon", "subscription").filter(pk=checkout_pk).first()
    if checkout is None or not has_receipt(checkout) or checkout.receipt_sent_at is not None:
        return False
    _send_receipt_email(checkout.customer_email, lambda: build_receipt(checkout))
    # Compare-and-set: two deliveries of the task at once send at most one more.
    Checkout.objects.filter(pk=checkout.pk, receipt_sent_at__isnull=True).update(receipt_sent_at=timezone.now())
    logger.info("receipt sent", extra={"checkout": str(checkout.public_id)})
    return True


def _send_receipt_email(email: str, build: Callable[[], Receipt]) -> None:
    """One receipt e-mail, HTML with a plain-text part, whole in the recipient's language (`build` runs under it)."""
    with translation.override(languages_for_emails([email])[email.lower()]):
        receipt = build()
        context = {"receipt": receipt}
        message = transactional_email(
            subject=_("Receipt: %(description)s, %(amount)s") % {"description": receipt.description, "amount": receipt.amount_display},
            body=render_to_string("billing/email/receipt.txt", context),
            html=render_to_string("billing/email/receipt.html", context),
            to=[email],
            tag="receipt",
            metadata={key: value for key, value in {"checkout_id": receipt.checkout_id, "transaction_id": receipt.transaction_id}.items() if value},
        )
    message.send()


def queue_marketplace_receipt_after_commit(
    *, subscription_pk: int, amount_cents: int, paid_at: datetime, transaction_id: str, payer_name: str, payer_email: str
) -> None:
    """A marketplace payment applied by record_marketplace_payment: its receipt once that commits."""
    fields = {
        "subscription_pk": subscription_pk, "amount_cents": amount_cents, "paid_at": paid_at.isoformat(),
        "transaction_id": transaction_id, "payer_name": payer_name, "payer_email": payer_email,
    }

    def queue():
        try:
            enqueue(send_marketplace_receipt_task, **fields)
        except Exception:
            logger.exception("marketplace receipt not queued", extra={"external_id": transaction_id})

    transaction.on_commit(queue)


def send_marketplace_receipt(*, subscription_pk: int, amount_cents: int, paid_at: str, transaction_id: str, payer_name: str, payer_email: str) -> bool:
    subscription = Subscription.objects.select_related("plan").filter(pk=subscription_pk).first()
    if subscription is None or not amount_cents:
        return False
    _send_receipt_email(
        payer_email,
        lambda: build_marketplace_receipt(
            subscription=subscription, amount_cents=amount_cents, paid_at=datetime.fromisoformat(paid_at),
            transaction_id=transaction_id, payer_name=payer_name, payer_email=payer_email,
        ),
    )
    logger.info("marketplace receipt sent", extra={"external_id": transaction_id})
    return True


@shared_task(
    name="billing.tasks.send_marketplace_receipt",
    **EMAIL_RETRY,
)
def send_marketplace_receipt_task(**fields) -> bool:
    """E-mails one marketplace payment's receipt, queued after the payment's commit."""
    return send_marketplace_receipt(**fields)


@shared_task(
    name="billing.tasks.send_receipt",
    **EMAIL_RETRY,
)
def send_receipt_task(*, checkout_pk: int) -> bool:
    """E-mails one payment's receipt, queued after the payment's commit."""
    return send_receipt(checkout_pk=checkout_pk)


