"""
Payments made on the Dias Marketplace (an external checkout): there is no
Checkout of ours, only the marketplace's postback. PENDING creates a pending
subscription keyed by the marketplace transaction id (`external_id`, unique
in the database); PAID activates it, creating it first when PENDING never
came. The plan is matched by exact price, else by the nearest price, and the
rule that matched is recorded on the subscription for a person to check.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F, Func
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.services import get_or_create_customer
from billing.gateways.base import ChargeStatus
from billing.models import Plan, Subscription
from config.api_errors import DomainError

logger = logging.getLogger(__name__)


class MarketplaceError(DomainError):
    code = "marketplace_payment_invalid"


def match_plan(*, amount_cents: int | None) -> tuple[Plan, str]:
    """The plan a marketplace payment bought, and the rule that matched it."""
    if amount_cents is None:
        raise MarketplaceError(_("The marketplace payment has no amount."))
    active = Plan.objects.filter(is_active=True)
    plan = active.filter(price_cents=amount_cents).order_by("display_order", "pk").first()
    if plan is not None:
        return plan, Subscription.PlanMatch.EXACT_PRICE
    plan = (
        active.annotate(distance=Func(F("price_cents") - amount_cents, function="ABS"))
        .order_by("distance", "price_cents", "pk")
        .first()
    )
    if plan is None:
        raise MarketplaceError(_("No active plan to match the marketplace payment to."))
    logger.warning("marketplace plan matched by nearest price", extra={"amount": amount_cents, "plan": plan.pk})
    return plan, Subscription.PlanMatch.NEAREST_PRICE


@transaction.atomic
def record_marketplace_payment(
    *, external_id: str, status: ChargeStatus, amount_cents: int | None, email: str, name: str = "", now=None
) -> Subscription:
    """
    Apply one marketplace event; idempotent (the same event twice changes
    nothing) and safe under concurrent deliveries: the buyer's row and the
    subscription row are locked before anything is read to decide.
    """
    now = now or timezone.now()
    if not external_id:
        raise MarketplaceError(_("The marketplace payment has no transaction id."))
    if not email:
        raise MarketplaceError(_("The marketplace payment has no payer e-mail."))
    if status not in (ChargeStatus.PENDING, ChargeStatus.PAID):
        raise MarketplaceError(_("Unknown marketplace status."))

    plan, rule = match_plan(amount_cents=amount_cents)
    user, _created = get_or_create_customer(email=email, name=name)
    # Lock the buyer first: every change to one buyer's subscriptions queues here, so two
    # deliveries (or two different payments) cannot both decide there is nothing live yet.
    get_user_model().objects.select_for_update().filter(pk=user.pk).first()
    subscription = Subscription.objects.select_for_update().filter(external_id=external_id).first()

    if status == ChargeStatus.PENDING:
        if subscription is not None:
            return subscription  # PENDING after PAID (out of order) or twice: nothing changes
        return Subscription.objects.create(
            user=user,
            plan=plan,
            status=Subscription.Status.PENDING,
            external_id=external_id,
            plan_match_rule=rule,
            last_reason=Subscription.Reason.CREATED,
            last_transition_at=now,
            created_at=now,
        )

    # PAID
    if subscription is not None and subscription.status != Subscription.Status.PENDING:
        return subscription  # already paid (or later revoked): a duplicate changes nothing

    live = Subscription.objects.select_for_update().live().filter(user=user).exclude(external_id=external_id).first()
    if live is not None:
        # The buyer is already subscribed: the payment extends the live subscription from its
        # end date (no days lost, like an early renewal); the marketplace record says so.
        live.end_date = max(live.end_date or now, now) + timedelta(days=plan.duration_days)
        live.status = Subscription.Status.ACTIVE
        live.last_reason = Subscription.Reason.RENEWED
        live.last_transition_at = now
        live.save(update_fields=["end_date", "status", "last_reason", "last_transition_at", "updated_at"])
        if subscription is None:
            subscription = Subscription(user=user, plan=plan, external_id=external_id, plan_match_rule=rule, created_at=now)
        subscription.status = Subscription.Status.CANCELED
        subscription.canceled_at = now
        subscription.cancel_reason = f"Paid on the marketplace; extended subscription {live.pk} instead."
        subscription.last_reason = Subscription.Reason.PAID
        subscription.last_transition_at = now
        subscription.save()
        return live

    if subscription is None:
        subscription = Subscription(user=user, plan=plan, external_id=external_id, plan_match_rule=rule, created_at=now)
    subscription.status = Subscription.Status.ACTIVE
    subscription.start_date = now
    subscription.end_date = now + timedelta(days=subscription.plan.duration_days if subscription.plan_id else plan.duration_days)
    subscription.last_reason = Subscription.Reason.PAID
    subscription.last_transition_at = now
    subscription.save()
    return subscription
