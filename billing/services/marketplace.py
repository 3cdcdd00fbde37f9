"""
Marketplace (Dias): no checkout of ours, only the marketplace's postback.
PENDING creates a pending subscription keyed by the marketplace transaction
id (`external_id`, unique in the database) and keeps the amount it
announced; PAID activates it, creating it first when PENDING never came.
A payment grants a plan only when its amount is exactly that plan's price
(or the amount of the PENDING it confirms); any other amount is kept and
listed for a person, never turned into access.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.services import get_guest_payment_owner
from billing import ledger
from billing.exceptions import MarketplaceError
from billing.gateways import ChargeStatus
from billing.ledger_models import LedgerEntry
from billing.models import PaymentGateway, Plan, ReconciliationItem, Subscription, UnclaimedMarketplacePayment
from billing.notifications import queue_marketplace_receipt_after_commit
from billing.periods import continues, paid_period
from billing.services.common import set_transition
from billing.services.locks import lock_user
from billing.services.outbox import emit_subscription_event
from billing.services.review import list_for_review

logger = logging.getLogger(__name__)


def match_plan(*, amount_cents: int | None) -> Plan | None:
    """The active plan whose price is exactly the amount paid; None when there is none."""
    if amount_cents is None:
        return None
    return Plan.objects.filter(is_active=True, price_cents=amount_cents).order_by("display_order", "pk").first()


def _plan_paid_for(pending: Subscription | None, amount_cents: int | None) -> Plan | None:
    """What a marketplace amount buys: the pending subscription's plan when it confirms the PENDING's amount, else an exact price."""
    if pending is not None and pending.status == Subscription.Status.PENDING:
        # Rows from before amounts were kept: the plan's price is what PENDING announced.
        expected = pending.external_amount_cents if pending.external_amount_cents is not None else pending.plan.price_cents
        return pending.plan if amount_cents == expected else None
    return match_plan(amount_cents=amount_cents)


def _list_marketplace_amount(*, external_id: str, status: ChargeStatus, amount_cents, email: str, pending, now) -> None:
    expected = None
    if pending is not None and pending.status == Subscription.Status.PENDING:
        expected = pending.external_amount_cents if pending.external_amount_cents is not None else pending.plan.price_cents
    gateway = PaymentGateway.objects.get(kind=PaymentGateway.Kind.DIAS)
    item, _created = list_for_review(
        gateway=gateway,
        transaction_id=external_id,
        kind=ReconciliationItem.Kind.MARKETPLACE_AMOUNT_MISMATCH,
        detail={"status": str(status), "amount": amount_cents, "expected_amount": expected, "payer_email": email},
        amount_cents=amount_cents,
        reopen=status == ChargeStatus.PAID,  # the money itself arrived: a person looks again
        now=now,
    )
    listed = LedgerEntry.objects.filter(kind=LedgerEntry.Kind.LISTED, gateway=gateway, transaction_id=external_id[:100])
    if status == ChargeStatus.PAID and not listed.exists():  # the money arrived (once; a re-delivery adds nothing)
        ledger.record_listed(
            cause=LedgerEntry.Cause.AMOUNT_MISMATCH, amount_cents=amount_cents, gateway=gateway, transaction_id=external_id,
            item=item, now=now,
        )
    logger.warning(
        "marketplace amount matches no plan: listed for a person",
        extra={"external_id": external_id, "amount": amount_cents, "expected": expected},
    )


def _keep_marketplace_unclaimed(*, external_id: str, status: ChargeStatus, amount_cents, email: str, name: str, now) -> None:
    """
    A marketplace event for an e-mail whose account is not confirmed: kept
    (never lost, never given to that account) until the mailbox owner
    confirms. Idempotent: the first PENDING and the first PAID are what count.
    """
    record, _created = UnclaimedMarketplacePayment.objects.get_or_create(
        external_id=external_id, defaults={"email": email.strip().lower(), "name": name[:150], "received_at": now}
    )
    record = UnclaimedMarketplacePayment.objects.select_for_update().get(pk=record.pk)
    if record.claimed_at is not None:
        if status == ChargeStatus.PENDING or record.paid_at is not None:
            return  # a re-delivery of what the claim already applied
        # The owner confirmed between our look at the account and this lock: retried, then applied to them.
        raise MarketplaceError(_("The marketplace payment was claimed meanwhile; it will be applied on retry."))
    if status == ChargeStatus.PENDING and record.pending_amount_cents is None and record.paid_at is None:
        record.pending_amount_cents = amount_cents
        record.save(update_fields=["pending_amount_cents"])
    elif status == ChargeStatus.PAID and record.paid_at is None:
        record.paid_amount_cents = amount_cents
        record.paid_at = now
        record.save(update_fields=["paid_amount_cents", "paid_at"])
    logger.info("marketplace payment kept unclaimed: its e-mail's account is not confirmed", extra={"external_id": external_id})


@transaction.atomic
def record_marketplace_payment(
    *, external_id: str, status: ChargeStatus, amount_cents: int | None, email: str, name: str = "", now=None
) -> Subscription | None:
    """
    Apply one marketplace event; idempotent (the same event twice changes
    nothing) and safe under concurrent deliveries: the buyer's row and the
    subscription row are locked before anything is read to decide.

    Returns the subscription the event created or paid, or None when its
    amount matches no plan (nor the PENDING it confirms): then nothing but a
    ReconciliationItem is written, for a person to look at. Also None while
    the payer's e-mail belongs to an account not yet confirmed (contract §3):
    the event is kept as an UnclaimedMarketplacePayment and applied when the
    mailbox owner confirms (claim_guest_payments), the period starting then.
    """
    now = now or timezone.now()
    _check_marketplace_event(external_id=external_id, email=email, status=status)

    # A first look without locks, so an amount that buys nothing creates no account
    # (the amount a PENDING announced never changes); decided again under the locks.
    seen = Subscription.objects.select_related("plan").filter(external_id=external_id).first()
    if (seen is None or (status == ChargeStatus.PAID and seen.status == Subscription.Status.PENDING)) and _plan_paid_for(
        seen, amount_cents
    ) is None:
        _list_marketplace_amount(external_id=external_id, status=status, amount_cents=amount_cents, email=email, pending=seen, now=now)
        return None

    owner, _created = get_guest_payment_owner(email=email, name=name)
    if owner is None:
        # The e-mail's account is not confirmed: maybe a squatter's. The payment waits, unclaimed.
        _keep_marketplace_unclaimed(external_id=external_id, status=status, amount_cents=amount_cents, email=email, name=name, now=now)
        return None
    # Lock the buyer first (the one lock order: user → subscription): every change to one
    # buyer's subscriptions queues here, so two deliveries cannot both decide nothing is live.
    user = lock_user(owner.pk)
    subscription = Subscription.objects.select_for_update().select_related("plan").filter(external_id=external_id).first()
    if status == ChargeStatus.PENDING:
        return _record_marketplace_pending(subscription, user=user, external_id=external_id, amount_cents=amount_cents, email=email, now=now)
    return _record_marketplace_paid(
        subscription, user=user, external_id=external_id, amount_cents=amount_cents, email=email, name=name, now=now
    )


def _check_marketplace_event(*, external_id: str, email: str, status: ChargeStatus) -> None:
    """An event we can apply: an id, a payer, a status we know, and a plan to match it to."""
    if not external_id:
        raise MarketplaceError(_("The marketplace payment has no transaction id."))
    if not email:
        raise MarketplaceError(_("The marketplace payment has no payer e-mail."))
    if status not in (ChargeStatus.PENDING, ChargeStatus.PAID):
        raise MarketplaceError(_("Unknown marketplace status."))
    if not Plan.objects.filter(is_active=True).exists():
        # The site is not set up yet: kept FAILED and retried once a plan exists.
        raise MarketplaceError(_("No active plan to match the marketplace payment to."))


def _record_marketplace_pending(
    subscription: Subscription | None, *, user, external_id: str, amount_cents: int | None, email: str, now: datetime
) -> Subscription | None:
    """PENDING: a pending subscription on the plan of that exact price, keeping the amount announced."""
    if subscription is not None:
        return subscription  # PENDING after PAID (out of order) or twice: nothing changes
    plan = match_plan(amount_cents=amount_cents)
    if plan is None:
        _list_marketplace_amount(external_id=external_id, status=ChargeStatus.PENDING, amount_cents=amount_cents, email=email, pending=None, now=now)
        return None
    return Subscription.objects.create(
        user=user,
        plan=plan,
        status=Subscription.Status.PENDING,
        external_id=external_id,
        external_amount_cents=amount_cents,
        plan_match_rule=Subscription.PlanMatch.EXACT_PRICE,
        last_reason=Subscription.Reason.CREATED,
        last_transition_at=now,
        created_at=now,
    )


def _record_marketplace_paid(
    subscription: Subscription | None, *, user, external_id: str, amount_cents: int | None, email: str, name: str, now: datetime
) -> Subscription | None:
    """PAID: the live subscription is extended, else the marketplace's own one starts a period now."""
    if subscription is not None and subscription.status != Subscription.Status.PENDING:
        return subscription  # already paid (or later revoked): a duplicate changes nothing
    plan = _plan_paid_for(subscription, amount_cents)
    if plan is None:
        _list_marketplace_amount(
            external_id=external_id, status=ChargeStatus.PAID, amount_cents=amount_cents, email=email, pending=subscription, now=now
        )
        return None
    if subscription is None:
        subscription = Subscription(
            user=user, plan=plan, external_id=external_id, plan_match_rule=Subscription.PlanMatch.EXACT_PRICE, created_at=now
        )
    live = Subscription.objects.select_for_update().live().filter(user=user).exclude(external_id=external_id).first()
    if live is not None:
        paid = _extend_live_from_marketplace(live, record=subscription, plan=plan, amount_cents=amount_cents, now=now)
        event = "subscription.renewed"
    else:
        paid = _activate_marketplace_subscription(subscription, plan=plan, amount_cents=amount_cents, now=now)
        event = "subscription.activated"
    emit_subscription_event(event, paid, now=now)
    queue_marketplace_receipt_after_commit(
        subscription_pk=paid.pk, amount_cents=amount_cents or 0, paid_at=now, transaction_id=external_id, payer_name=name or user.name, payer_email=user.email
    )
    return paid


def _extend_live_from_marketplace(live: Subscription, *, record: Subscription, plan: Plan, amount_cents: int | None, now: datetime) -> Subscription:
    """
    The buyer is already subscribed: the payment extends the live subscription, by the
    same period rule as our own checkouts; the marketplace's record says so (canceled).
    """
    if not continues(live.end_date, at=now):
        live.start_date = now  # the period rule (billing.periods): a new period, access had ended
    grant_start, live.end_date = paid_period(current_end=live.end_date, paid_at=now, start=now, days=plan.duration_days)
    set_transition(live, status=Subscription.Status.ACTIVE, reason=Subscription.Reason.RENEWED, now=now)
    live.save(update_fields=["start_date", "end_date", "status", "last_reason", "last_transition_at", "updated_at"])
    record.external_amount_cents = amount_cents
    record.status = Subscription.Status.CANCELED
    record.canceled_at = now
    record.cancel_reason = f"Paid on the marketplace; extended subscription {live.pk} instead."
    record.last_reason = Subscription.Reason.PAID
    record.last_transition_at = now
    record.save()
    _record_marketplace(live, external_id=record.external_id, amount_cents=amount_cents, starts_at=grant_start, now=now)
    return live


def _activate_marketplace_subscription(subscription: Subscription, *, plan: Plan, amount_cents: int | None, now: datetime) -> Subscription:
    """No live subscription: the marketplace's own starts a period of the plan's duration now."""
    subscription.external_amount_cents = amount_cents
    subscription.start_date = now
    subscription.end_date = now + timedelta(days=plan.duration_days)
    set_transition(subscription, status=Subscription.Status.ACTIVE, reason=Subscription.Reason.PAID, now=now)
    subscription.save()
    _record_marketplace(subscription, external_id=subscription.external_id, amount_cents=amount_cents, starts_at=now, now=now)
    return subscription


def _record_marketplace(subscription: Subscription, *, external_id: str, amount_cents: int, starts_at: datetime, now: datetime) -> None:
    """The ledger of a marketplace PAID: the money, keyed by the marketplace's id, and the days it bought."""
    ledger.write(
        ledger.record_marketplace_payment(
            subscription=subscription, external_id=external_id, amount_cents=amount_cents, now=now, save=False
        ),
        ledger.record_grant(
            subscription=subscription, starts_at=starts_at, ends_at=subscription.end_date, cause=LedgerEntry.Cause.MARKETPLACE,
            now=now, save=False,
        ),
    )
