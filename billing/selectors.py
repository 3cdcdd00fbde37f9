"""
Billing reads for the API, the admin and the finance dashboard. Writes live
in billing/services.py; nothing here changes a row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate, TruncMonth
from django.utils import timezone

from billing.models import Checkout, Plan, Subscription


def list_active_plans():
    return Plan.objects.filter(is_active=True).order_by("display_order", "price_cents", "pk")


def get_current_subscription(*, user) -> Subscription | None:
    """The live subscription, else one waiting for its first payment, else None."""
    base = Subscription.objects.filter(user=user).select_related("plan", "next_plan")
    return (
        base.filter(status__in=Subscription.LIVE_STATUSES).first()
        or base.filter(status=Subscription.Status.PENDING).order_by("-created_at", "-pk").first()
    )


def get_open_renewal(*, subscription: Subscription) -> Checkout | None:
    return (
        Checkout.objects.filter(
            subscription=subscription, purpose=Checkout.Purpose.RENEWAL, status=Checkout.Status.PENDING
        )
        .order_by("-created_at")
        .first()
    )
