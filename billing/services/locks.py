"""
The one lock order of billing. Every flow that changes a checkout or a
subscription takes its row locks through these helpers, in this order:

    checkout → user → subscription

so that no two flows ever wait on each other in opposite orders.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model

from billing.models import Checkout, Subscription


def lock_checkout(checkout: Checkout) -> Checkout:
    return Checkout.objects.select_for_update().get(pk=checkout.pk)


def lock_user(user_id: int):
    # Serialises every activation of one user, so two payments landing at the
    # same moment cannot both open a live subscription.
    return get_user_model().objects.select_for_update().get(pk=user_id)


def lock_live_subscription(user_id: int) -> Subscription | None:
    return Subscription.objects.select_for_update().live().filter(user_id=user_id).first()


def lock_subscription(subscription: Subscription, *, with_user: bool = False) -> Subscription:
    # Open renewal charges first, then (the user and) the subscription: the
    # same order as activate_checkout (checkout → user → subscription), so
    # the two never wait on each other in opposite orders.
    list(
        Checkout.objects.select_for_update()
        .filter(subscription_id=subscription.pk, purpose=Checkout.Purpose.RENEWAL, status=Checkout.Status.PENDING)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if with_user:
        lock_user(subscription.user_id)
    return Subscription.objects.select_for_update().get(pk=subscription.pk)
