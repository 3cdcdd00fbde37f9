"""Small steps every state change shares: a subscription's transition, what ended it, voiding open renewal charges."""

from __future__ import annotations

from datetime import datetime

from billing.checkout_status import update_checkouts
from billing.models import Checkout, Subscription

# The decisions that end a subscription for good: a refund (or chargeback), the admin's cancel or
# expire, the buyer's withdrawal, the account's deletion. The clock's endings (expired after grace, a
# trial ended unpaid, canceled at the period's end, never paid) are not decisions.
ENDED_BY_DECISION = (
    Subscription.Reason.REFUNDED,
    Subscription.Reason.CANCELED_BY_ADMIN,
    Subscription.Reason.EXPIRED_BY_ADMIN,
    Subscription.Reason.WITHDRAWN,
    Subscription.Reason.ACCOUNT_DELETED,
)
ENDED_STATUSES = (Subscription.Status.REFUNDED, Subscription.Status.CANCELED, Subscription.Status.EXPIRED)


def ended_by_decision(subscription: Subscription) -> bool:
    """
    The one place that says what ended a subscription: True when a decision
    did (ENDED_BY_DECISION). Such a subscription is never revived by a late
    payment of one of its charges: that money is kept and listed for a person
    (activation.is_void_charge). One ended by the clock may be: paying its
    renewal late opens a new period.
    """
    return subscription.status in ENDED_STATUSES and subscription.last_reason in ENDED_BY_DECISION


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
