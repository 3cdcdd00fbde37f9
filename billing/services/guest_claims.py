"""
Guest claims: the owner of an e-mail confirmed it, so the payments made with
it that waited unclaimed (a guest checkout, a marketplace payment; contract
§3) become theirs, each applied as if it arrived at the claim.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction

from accounts.services import declare_birth_date
from billing.checkout_status import save_checkout
from billing.exceptions import TransitionNotAllowed
from billing.gateways import ChargeStatus
from billing.models import Checkout, Subscription, UnclaimedMarketplacePayment
from billing.services.activation import activate_checkout
from billing.services.locks import lock_user
from billing.services.marketplace import record_marketplace_payment

logger = logging.getLogger(__name__)


def claim_guest_payments(*, user, now: datetime) -> list[Subscription]:
    """
    The owner of an e-mail proved they read it: the guest payments made with
    it that waited unclaimed become theirs, oldest first, each activated as
    if paid now (the access, and so the period, starts at the claim; the
    checkout keeps when the money arrived). Idempotent: a claimed checkout
    has a user and is skipped.
    """
    if user.email_confirmed_at is None:
        return []
    claimed = []
    pending = Checkout.objects.unclaimed().filter(customer_email__iexact=user.email).order_by("paid_at", "pk")
    for checkout in pending:
        with transaction.atomic():
            money_paid_at, was_late = checkout.paid_at, checkout.is_late
            # activate_checkout locks in the one order and re-checks under the lock: a checkout
            # claimed (or refunded) meanwhile by a concurrent call is left as it is.
            try:
                subscription = activate_checkout(checkout=checkout, paid_at=now, now=now, claimed_by=user)
            except TransitionNotAllowed:
                continue  # refunded meanwhile: nothing to hand over
            if not Checkout.objects.filter(pk=checkout.pk, user=user, subscription=subscription).exists():
                continue
            # activate_checkout recorded the claim time as the payment's; the money came earlier.
            claimed_checkout = Checkout.objects.get(pk=checkout.pk)
            claimed_checkout.paid_at, claimed_checkout.is_late = money_paid_at, was_late
            save_checkout(claimed_checkout, update_fields=["paid_at", "is_late", "updated_at"])
            if checkout.customer_birth_date is not None and user.birth_date is None:
                # The payer's declared age becomes the owner's (activate_checkout locked the user row already).
                user = declare_birth_date(user=user, birth_date=checkout.customer_birth_date, now=now)
            logger.info("guest payment claimed", extra={"checkout": str(checkout.public_id), "user_id": user.pk})
            claimed.append(subscription)
    claimed.extend(_claim_marketplace_payments(user=user, now=now))
    return claimed


def claim_guest_payments_on_confirmation(*, user, now: datetime, **kwargs) -> None:
    """Receiver of accounts' `email_confirmed` (connected in BillingConfig.ready())."""
    claim_guest_payments(user=user, now=now)


def _claim_marketplace_payments(*, user, now: datetime) -> list[Subscription]:
    """
    The marketplace payments that waited for this e-mail, oldest first, each
    applied through record_marketplace_payment as if it arrived now (its
    PENDING first when one came, then its PAID): the same amount and period
    rules, the period starting at the claim. Idempotent: a claimed record is
    skipped; record_marketplace_payment is idempotent per external id.
    """
    claimed = []
    waiting = UnclaimedMarketplacePayment.objects.filter(email__iexact=user.email, claimed_at__isnull=True).order_by("received_at", "pk")
    for record_id in waiting.values_list("pk", flat=True):
        with transaction.atomic():
            lock_user(user.pk)  # the one order: the buyer, then the waiting record, then subscriptions
            record = UnclaimedMarketplacePayment.objects.select_for_update().filter(pk=record_id, claimed_at__isnull=True).first()
            if record is None:
                continue  # claimed meanwhile by a concurrent confirmation
            subscription = None
            if record.pending_amount_cents is not None:
                subscription = record_marketplace_payment(
                    external_id=record.external_id, status=ChargeStatus.PENDING, amount_cents=record.pending_amount_cents,
                    email=record.email, name=record.name, now=now,
                )
            if record.paid_at is not None:
                subscription = record_marketplace_payment(
                    external_id=record.external_id, status=ChargeStatus.PAID, amount_cents=record.paid_amount_cents,
                    email=record.email, name=record.name, now=now,
                )
            record.claimed_at = now
            record.subscription = subscription
            record.save(update_fields=["claimed_at", "subscription"])
            logger.info("marketplace payment claimed", extra={"external_id": record.external_id, "user_id": user.pk})
            if subscription is not None and record.paid_at is not None:
                claimed.append(subscription)
    return claimed
