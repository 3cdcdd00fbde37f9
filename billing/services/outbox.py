"""
Billing's outbound events (contract §3b), written through integrations.outbox
inside the transaction of the service that causes them: an event exists
exactly when its state change committed. `data` is the checkout or the
subscription as the API shows it, with the customer's name, e-mail and phone
and the checkout's tracking.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from billing.models import Checkout, Subscription
from billing.tracking import last_touch
from integrations import conversions
from integrations.outbox import active_endpoints, emit, emit_many, has_endpoints_for


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def ordering_key(email: str) -> str:
    """Events of one customer (so of each subscription) are delivered in order; the key carries no e-mail."""
    return "customer:" + hashlib.sha256((email or "").strip().lower().encode()).hexdigest()[:32]


def subscription_fields(subscription: Subscription | None) -> dict | None:
    if subscription is None or subscription.pk is None:
        return None
    return {
        "id": subscription.pk,
        "plan": {"id": subscription.plan_id, "name": subscription.plan.name},
        "status": subscription.status,
        "start_date": _iso(subscription.start_date),
        "end_date": _iso(subscription.end_date),
        "cancel_at_period_end": subscription.cancel_at_period_end,
    }


def checkout_data(checkout: Checkout) -> dict:
    return {
        "checkout_id": str(checkout.public_id),
        "status": checkout.status,
        "purpose": checkout.purpose,
        "total_amount": checkout.total_cents,
        "currency": "BRL",
        "paid_at": _iso(checkout.paid_at),
        "plan": {"id": checkout.plan_id, "name": checkout.plan.name},
        "subscription": subscription_fields(checkout.subscription) if checkout.subscription_id else None,
        "customer": {"name": checkout.customer_name, "email": checkout.customer_email, "phone": checkout.customer_phone},
        "tracking": last_touch(checkout.tracking),
        "first_touch": (checkout.tracking or {}).get("first") or {},
    }


def subscription_data(subscription: Subscription, *, checkout: Checkout | None = None) -> dict:
    user = subscription.user
    customer = {"name": user.name, "email": user.email, "phone": checkout.customer_phone if checkout else ""}
    return {
        **subscription_fields(subscription),
        "checkout_id": str(checkout.public_id) if checkout else None,
        "customer": customer,
        "tracking": last_touch(checkout.tracking) if checkout else {},
    }


def emit_checkout_event(event_type: str, checkout: Checkout, *, now: datetime, endpoints=None) -> None:
    emit(
        event_type, data=checkout_data(checkout), ordering_key=ordering_key(checkout.customer_email), now=now,
        endpoints=endpoints,
    )


def emit_subscription_event(
    event_type: str, subscription: Subscription, *, now: datetime, checkout: Checkout | None = None, endpoints=None
) -> None:
    emit(
        event_type, data=subscription_data(subscription, checkout=checkout),
        ordering_key=ordering_key(subscription.user.email), now=now, endpoints=endpoints,
    )


def emit_payment_paid(checkout: Checkout, subscription: Subscription, *, renewed: bool, now: datetime) -> None:
    """
    A confirmed payment: payment.paid, then subscription.activated or
    .renewed, and the ad platforms' Purchase (queued after commit; a platform
    that is down delays the conversion, never the payment).
    """
    endpoints = active_endpoints()
    emit_checkout_event("payment.paid", checkout, now=now, endpoints=endpoints)
    kind = "subscription.renewed" if renewed else "subscription.activated"
    emit_subscription_event(kind, subscription, now=now, checkout=checkout, endpoints=endpoints)
    conversions.queue_purchase(checkout)


def emit_payment_refused(checkout: Checkout, attempt, *, now: datetime) -> None:
    """payment.refused: a card charge the bank refused (a purchase attempt or an automatic renewal)."""
    data = checkout_data(checkout)
    data["refusal"] = {
        "code": attempt.refusal_code,
        "reason": attempt.refusal_reason,
        "attempt": attempt.kind,
        "card": {"brand": attempt.card_brand, "last_digits": attempt.card_last_digits},
        "installments": attempt.installments,
    }
    emit("payment.refused", data=data, ordering_key=ordering_key(checkout.customer_email), now=now)


def emit_swept(event_type: str, claim, *, now: datetime) -> None:
    """
    The sweep's set-based steps tag the rows they changed with `claim`
    (Subscription.sweep_claim); their events are written here in bulk, in the
    step's transaction: one read and two inserts whatever the number of rows.
    Nothing is read when no endpoint wants the event.
    """
    if not has_endpoints_for(event_type):
        return
    rows = (
        Subscription.objects.filter(sweep_claim=claim)
        .order_by("pk")
        .values("pk", "plan_id", "plan__name", "status", "start_date", "end_date", "cancel_at_period_end", "user__name", "user__email")
    )
    items = [
        (
            {
                "id": row["pk"],
                "plan": {"id": row["plan_id"], "name": row["plan__name"]},
                "status": row["status"],
                "start_date": _iso(row["start_date"]),
                "end_date": _iso(row["end_date"]),
                "cancel_at_period_end": row["cancel_at_period_end"],
                "checkout_id": None,
                "customer": {"name": row["user__name"], "email": row["user__email"], "phone": ""},
                "tracking": {},
            },
            ordering_key(row["user__email"]),
        )
        for row in rows
    ]
    emit_many(event_type, items=items, now=now)


def emit_checkouts_abandoned(claim, *, now: datetime) -> None:
    """
    `checkout.abandoned` (contract §3b: unpaid after the first
    CHECKOUT_RECOVERY_MINUTES) for the checkouts the sweep's reminder step
    tagged `claim` (Checkout.recovery_claim) as getting their first reminder,
    in the step's transaction: one read and two inserts whatever their number,
    nothing read when no endpoint wants the event.
    """
    if not has_endpoints_for("checkout.abandoned"):
        return
    checkouts = (
        Checkout.objects.filter(recovery_claim=claim).select_related("plan", "subscription__plan").order_by("pk")
    )
    items = [(checkout_data(checkout), ordering_key(checkout.customer_email)) for checkout in checkouts]
    emit_many("checkout.abandoned", items=items, now=now)
