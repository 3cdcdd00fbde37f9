"""Small steps every state change shares: a subscription's transition, voiding open renewal charges."""

from __future__ import annotations

from datetime import datetime

from billing.checkout_status import update_checkouts
from billing.models import Checkout, Subscription


def set_transition(subscription: Subscription, *, status: str, reason: str, now: datetime) -> None:
    subscription.status = status
    subscription.last_reason = reason
    subscription.last_transition_at = now


def cancel_open_renewals(subscription: Subscription, *, now: datetime, exclude_pk: int | None = None) -> int:
    return void_open_charges(subscription, now=now, exclude_pk=exclude_pk, purposes=(Checkout.Purpose.RENEWAL,))


def void_open_charges(
    subscription: Subscription,
    *,
    now: datetime,
    exclude_pk: int | None = None,
    purposes=(Checkout.Purpose.RENEWAL, Checkout.Purpose.UPGRADE),
) -> int:
    """
    Open charges priced for a period that no longer is: `canceled` (void).
    Still payable at the gateway; activate_checkout keeps such a payment
    and lists it for a person instead of turning it into access.
    """
    qs = Checkout.objects.filter(subscription=subscription, purpose__in=purposes, status=Checkout.Status.PENDING)
    if exclude_pk:
        qs = qs.exclude(pk=exclude_pk)
    return update_checkouts(qs, status=Checkout.Status.CANCELED, updated_at=now)
