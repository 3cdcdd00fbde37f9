"""
Withdrawal (direito de arrependimento, CDC art. 49): within WITHDRAWAL_DAYS
of a subscription's first payment the buyer gives it up and gets back all
that was paid for it (plan, order bumps, upgrades, renewals).

`withdraw_subscription` ends access at once and opens one RefundRequest per
paid checkout; the money records change only when the refund is confirmed,
through `refund_checkout` (the gateway's `refunded` postback, or staff
marking a hand-made refund done: `complete_refund_request`). Asking the
gateway to refund is a network call, made by the door after commit
(billing.refunds), never here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from billing import ledger
from billing.exceptions import TransitionNotAllowed, WithdrawalWindowClosed
from billing.ledger_models import LedgerEntry
from billing.models import Checkout, RefundRequest, Subscription
from billing.selectors import withdrawal_closes_at
from billing.services.checkouts import refund_checkout
from billing.services.common import set_transition, void_open_charges
from billing.services.locks import lock_subscription


@dataclass
class Withdrawal:
    subscription: Subscription
    refunds: list[RefundRequest]

    @property
    def amount_cents(self) -> int:
        return sum(refund.amount_cents for refund in self.refunds)

    @property
    def status(self) -> str:
        """`refunded` once every refund is confirmed, else `refund_pending` (contract §3)."""
        if all(refund.status == RefundRequest.Status.REFUNDED for refund in self.refunds):
            return "refunded"
        return "refund_pending"


def _refunds_of(subscription: Subscription) -> list[RefundRequest]:
    return list(RefundRequest.objects.filter(subscription=subscription).select_related("checkout").order_by("pk"))


@transaction.atomic
def withdraw_subscription(*, subscription: Subscription, now: datetime | None = None) -> Withdrawal:
    """
    The buyer withdraws: the subscription ends `refunded` / `withdrawn` at once
    (no access), its open renewal and upgrade charges are void, and each of its
    paid checkouts gets a RefundRequest for its full total, due by
    `RefundRequest.DEADLINE`. Idempotent: a repeat returns the same requests.
    After the window: WithdrawalWindowClosed (409), naming when it closed.
    """
    now = now or timezone.now()
    subscription = lock_subscription(subscription)  # user → subscription → its open charges
    if subscription.last_reason == Subscription.Reason.WITHDRAWN:
        return Withdrawal(subscription=subscription, refunds=_refunds_of(subscription))
    if not subscription.is_live:
        raise TransitionNotAllowed(_("This subscription is not active."), code="not_live")
    closes_at = withdrawal_closes_at(subscription=subscription)
    if closes_at is None:
        raise TransitionNotAllowed(
            _("This subscription was not paid here, so it cannot be withdrawn from here."), code="nothing_to_refund"
        )
    if now > closes_at:
        raise WithdrawalWindowClosed(
            _("The %(days)s-day withdrawal period ended on %(date)s.")
            % {
                "days": settings.WITHDRAWAL_DAYS,
                "date": formats.date_format(timezone.localtime(closes_at), "SHORT_DATETIME_FORMAT"),
            },
            closed_at=closes_at,
        )
    # Then the subscription's paid checkouts, by pk: the last step of the lock order.
    paid = list(
        Checkout.objects.select_for_update().filter(subscription=subscription, status=Checkout.Status.PAID).order_by("pk")
    )
    set_transition(subscription, status=Subscription.Status.REFUNDED, reason=Subscription.Reason.WITHDRAWN, now=now)
    subscription.canceled_at = now
    subscription.cancel_at_period_end = False
    subscription.next_plan = None
    subscription.save()
    ledger.record_revoke(
        subscription=subscription, starts_at=now, ends_at=subscription.end_date, cause=LedgerEntry.Cause.WITHDRAWAL, now=now
    )
    void_open_charges(subscription, now=now)
    RefundRequest.objects.bulk_create(
        [
            RefundRequest(
                checkout=checkout, subscription=subscription, amount_cents=checkout.total_cents,
                requested_at=now, deadline=now + RefundRequest.DEADLINE,
            )
            for checkout in paid
            if checkout.total_cents > 0  # an upgrade its credit paid in full cost nothing
        ]
    )
    return Withdrawal(subscription=subscription, refunds=_refunds_of(subscription))


def complete_refund_request(*, refund_request: RefundRequest, now: datetime | None = None) -> RefundRequest:
    """Staff refunded by hand at the provider (no refund API): the checkout is refunded and the request closed."""
    now = now or timezone.now()
    refund_checkout(checkout=refund_request.checkout, now=now, closed_by=RefundRequest.ClosedBy.ADMIN)
    return RefundRequest.objects.get(pk=refund_request.pk)
