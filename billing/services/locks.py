"""
The one lock order of billing. Every flow that changes a checkout or a
subscription takes its row locks through these helpers, in this order:

    user → subscription(s) (by pk) → checkout(s) (by pk) → coupon

- The coupon row is the last lock, and a leaf, taken FOR NO KEY UPDATE
  (inserting a checkout that points at it takes KEY SHARE, which this does
  not wait for): `create_checkout` takes it after inserting its rows
  (services.offers.hold_coupon_use), and `activate_checkout` counts a use
  with one UPDATE of it after locking the rest. Nothing waits for another
  lock while holding a coupon's.

- A flow that starts from a checkout (activate, refund, fail, restore after
  a dispute) reads the checkout without a lock to learn its user, locks the
  user, then the subscriptions involved (the checkout's own and the user's
  live one), then the checkout, and re-checks after locking that the
  checkout still belongs to that user and subscription (else it starts
  over). A guest checkout (no user yet) has its account resolved first
  (`user_id=`) and is then locked like any other.
- A flow that starts from a subscription (cancel, cancel now, expire,
  extend, change plan, the admin's activation) locks its user, the
  subscription, then its open (pending) renewal and upgrade checkouts.

The user lock comes first because it is the one row every flow of a
customer shares: it serialises all of one customer's billing, so two
payments landing at once cannot both open a live subscription, and no two
flows ever wait on each other in opposite orders (the refund-vs-renewal and
purchase-vs-renewal deadlocks). The sweep takes no row lock across kinds:
each of its steps is one set-based statement on one table.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db.models import Q

from billing.models import Checkout, Coupon, Subscription

OPEN_CHARGE_PURPOSES = (Checkout.Purpose.RENEWAL, Checkout.Purpose.UPGRADE)


@dataclass
class CheckoutLocks:
    checkout: Checkout
    user: object | None
    own: Subscription | None  # the subscription the checkout started, renews or upgrades
    live: Subscription | None  # the user's live subscription (may be `own`)


def lock_user(user_id: int):
    return get_user_model().objects.select_for_update().get(pk=user_id)


def lock_checkout(checkout: Checkout, *, user_id: int | None = None) -> CheckoutLocks:
    """
    Lock what a flow on `checkout` may change, in the one order. `user_id`
    is the account a guest checkout is being given (activation).
    """
    # The caller's copy says whom to lock first: what it says is checked once the checkout is locked,
    # and the checkout re-read only if it moved meanwhile.
    seen = checkout
    for _attempt in range(5):
        owner_id = seen.user_id or user_id
        user = lock_user(owner_id) if owner_id else None
        wanted = Q(pk=seen.subscription_id) if seen.subscription_id else Q(pk__in=[])
        if owner_id:
            wanted |= Q(user_id=owner_id, status__in=Subscription.LIVE_STATUSES)
        subscriptions = list(Subscription.objects.select_for_update().filter(wanted).order_by("pk"))
        # The plan comes along, unlocked (`of`): every flow reads it, and a plan row is never locked.
        locked = Checkout.objects.select_for_update(of=("self",)).select_related("plan").get(pk=checkout.pk)
        if locked.subscription_id != seen.subscription_id or locked.user_id not in (None, owner_id):
            # Moved between the read and the lock: lock again in the right order.
            seen = Checkout.objects.only("user_id", "subscription_id").get(pk=checkout.pk)
            continue
        by_pk = {s.pk: s for s in subscriptions}
        live = next((s for s in subscriptions if s.is_live and s.user_id == owner_id), None)
        return CheckoutLocks(checkout=locked, user=user, own=by_pk.get(locked.subscription_id), live=live)
    raise RuntimeError(f"checkout {checkout.pk} kept changing owner while being locked")


def lock_subscription(subscription: Subscription) -> Subscription:
    """The subscription's user, the subscription, then its open renewal and upgrade charges."""
    user_id = Subscription.objects.values_list("user_id", flat=True).get(pk=subscription.pk)
    lock_user(user_id)
    locked = Subscription.objects.select_for_update().get(pk=subscription.pk)
    lock_open_charges(locked)
    return locked


def lock_open_charges(subscription: Subscription) -> list[Checkout]:
    """Open renewal and upgrade charges of a subscription already locked, by pk."""
    return list(
        Checkout.objects.select_for_update()
        .filter(subscription_id=subscription.pk, purpose__in=OPEN_CHARGE_PURPOSES, status=Checkout.Status.PENDING)
        .order_by("pk")
    )


def lock_live_subscription(user_id: int) -> Subscription | None:
    """The user's live subscription; the caller holds the user's lock already."""
    return Subscription.objects.select_for_update().live().filter(user_id=user_id).first()


def lock_coupon(coupon_id: int) -> Coupon:
    """The coupon row, last in the order (see the module docstring)."""
    return Coupon.objects.select_for_update(no_key=True).get(pk=coupon_id)
