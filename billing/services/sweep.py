"""The sweep: every subscription and checkout the clock has overtaken, in set-based statements."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Case, Exists, F, OuterRef, Q, Subquery, Value, When
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.checkout_status import update_checkouts
from billing.fields import EncryptedTextField
from billing.models import Checkout, ReminderOptOut, Subscription
from billing.notifications import card_label, queue_recovery_reminders, queue_renewal_notices, queue_swept_emails
from billing.periods import grace_start
from billing.pricing import price_checkout
from billing.services.card_renewals import RenewalCharges, charge_due_card_renewals
from billing.services.offers import REOPEN_HOLD, coupon_applies_to_plan, coupon_plan_ids
from billing.services.outbox import emit_checkouts_abandoned, emit_swept

logger = logging.getLogger(__name__)

# An unpaid first checkout without a PIX expiry is abandoned after this long.
STALE_CHECKOUT_AGE = timedelta(days=1)
# A reminder step goes only to checkouts created within this long after its time: a backlog (a sweep
# that did not run, a newly configured step) never mails checkouts long forgotten.
RECOVERY_WINDOW = timedelta(days=1)
# How a marketplace sale's plan was matched (billing.services.marketplace.record_marketplace_payment).
MARKETPLACE_MATCH_RULES = (Subscription.PlanMatch.EXACT_PRICE, Subscription.PlanMatch.NEAREST_PRICE)


@dataclass
class SweepResult:
    checkouts_expired: int = 0
    never_paid: int = 0
    trials_ended: int = 0
    expired: int = 0
    canceled_at_period_end: int = 0
    renewals_closed: int = 0
    past_due: int = 0
    renewals_issued: int = 0
    reminders_sent: int = 0
    card_renewals: RenewalCharges = field(default_factory=RenewalCharges)
    renewal_checkout_ids: list = field(default_factory=list, repr=False)

    @property
    def rows_changed(self) -> int:
        return (
            self.checkouts_expired + self.never_paid + self.trials_ended + self.expired + self.canceled_at_period_end
            + self.renewals_closed + self.past_due + 2 * self.renewals_issued  # claim + new checkout
            + self.reminders_sent
        )

    def summary(self) -> str:
        return (
            f"renewals issued {self.renewals_issued}, past due {self.past_due}, expired {self.expired}, "
            f"trials ended unpaid {self.trials_ended}, "
            f"canceled at period end {self.canceled_at_period_end}, stale checkouts expired {self.checkouts_expired}, "
            f"never paid {self.never_paid}, renewal charges closed {self.renewals_closed}, "
            f"checkout reminders sent {self.reminders_sent}, "
            f"saved cards charged {self.card_renewals.charged} (paid {self.card_renewals.paid}, "
            f"refused {self.card_renewals.refused}, processing {self.card_renewals.processing}, "
            f"recovered {self.card_renewals.recovered}, not reached {self.card_renewals.failed})"
        )


def sweep_subscriptions(*, now: datetime | None = None, progress=None) -> SweepResult:
    """
    Moves every subscription and checkout the clock has overtaken, in a fixed
    number of set-based statements, whatever the number of rows:

    1. unpaid first checkouts whose PIX expired or that are a day old → expired;
    2. their pending subscriptions → expired (`never_paid`);
    2b. free trials whose `end_date` passed, first charge unpaid → expired (`trial_ended`, no grace);
    3. live subscriptions past grace → expired;
    4. subscriptions canceled at period end whose period is over → canceled;
    5. renewal charges of subscriptions no longer live → expired;
    5b. due card renewals: the saved card charged at `end_date` and on the
       CARD_RENEWAL_RETRY_DAYS after a refusal (services.card_renewals: one
       claimed attempt at a time, the gateway called outside any transaction);
    6. active subscriptions past `end_date` → past_due (`grace_started`);
    7. due renewals: claimed by compare-and-set (`renewal_issued_for` ← `end_date`),
       read back, created in one bulk insert, e-mailed after commit;
    8. reminders of unpaid first checkouts, one per CHECKOUT_RECOVERY_MINUTES
       step: claimed by compare-and-set on `recovery_reminders_sent`, read
       back, e-mailed after commit; a checkout's first reminder writes its
       `checkout.abandoned` event in the same transaction.

    Each step is its own short transaction and a compare-and-set on the rows'
    own columns: a second sweep running at the same moment waits on the row
    locks, re-checks the condition (PostgreSQL re-evaluates it on the new row
    version) and finds nothing left to do. Keeping the steps apart also means
    the sweep never holds subscription locks while waiting for checkout
    locks, the reverse of activate_checkout's order.
    """
    now = now or timezone.now()
    result = SweepResult()
    report = progress or (lambda step, count: None)

    result.checkouts_expired = _expire_unpaid_checkouts(now=now)  # 1
    report("checkouts_expired", result.checkouts_expired)
    result.never_paid = _expire_never_paid(now=now)  # 2
    report("never_paid", result.never_paid)
    result.trials_ended = _end_unpaid_trials(now=now)  # 2b
    report("trials_ended", result.trials_ended)
    result.expired = _expire_past_grace(now=now)  # 3
    report("expired", result.expired)
    result.canceled_at_period_end = _cancel_at_period_end(now=now)  # 4
    report("canceled_at_period_end", result.canceled_at_period_end)
    result.renewals_closed = _close_orphan_renewals(now=now)  # 5
    report("renewals_closed", result.renewals_closed)
    # 5b, before past_due: a saved card paid at end_date keeps the subscription active throughout.
    result.card_renewals = charge_due_card_renewals(now=now)
    report("card_renewals_charged", result.card_renewals.charged)
    result.past_due = _start_grace(now=now)  # 6
    report("past_due", result.past_due)
    _issue_renewals(now=now, result=result)  # 7
    report("renewals_issued", result.renewals_issued)
    _send_recovery_reminders(now=now, result=result)  # 8
    report("reminders_sent", result.reminders_sent)
    logger.info("subscriptions swept", extra={"summary": result.summary()})
    return result


@transaction.atomic
def _expire_unpaid_checkouts(*, now: datetime) -> int:
    """1. Unpaid first checkouts whose PIX expired, or a day old without one → expired."""
    # Pages polling these checkouts see the change at once, not after the status cache's TTL.
    return update_checkouts(
        Checkout.objects.filter(status=Checkout.Status.PENDING, purpose=Checkout.Purpose.NEW)
        # A PIX is payable until its expiry, however old the checkout; the age rule is for checkouts without one.
        .filter(Q(pix_expires_at__lt=now) | Q(pix_expires_at__isnull=True, created_at__lt=now - STALE_CHECKOUT_AGE))
        # Reopened from a reminder moments ago: its fresh PIX is being issued.
        .exclude(reopened_at__gt=now - REOPEN_HOLD),
        status=Checkout.Status.EXPIRED,
        updated_at=now,
    )


@transaction.atomic
def _expire_never_paid(*, now: datetime) -> int:
    """2. Pending subscriptions whose first checkout ended unpaid, none other open → expired (`never_paid`)."""
    C, S = Checkout.Status, Subscription.Status
    unpaid_first = Checkout.objects.filter(
        subscription=OuterRef("pk"), purpose=Checkout.Purpose.NEW, status__in=[C.EXPIRED, C.FAILED, C.CANCELED]
    )
    still_open = Checkout.objects.filter(subscription=OuterRef("pk"), status__in=[C.PENDING, C.PAID])
    return (
        Subscription.objects.filter(status=S.PENDING)
        .filter(Exists(unpaid_first), ~Exists(still_open))
        .update(status=S.EXPIRED, last_reason=Subscription.Reason.NEVER_PAID, last_transition_at=now, updated_at=now)
    )


def _lapse(subscriptions, *, status: str, reason: str, now: datetime) -> int:
    """
    One set-based move of the sweep (steps 2b, 3 and 6): the rows change status and reason, tagged with
    a claim so that exactly those rows get their outbound event (`subscription.expired` or
    `.past_due`) and their owner's e-mail, after commit.
    """
    claim = uuid.uuid4()
    moved = subscriptions.update(status=status, last_reason=reason, last_transition_at=now, updated_at=now, sweep_claim=claim)
    if moved:
        kind = "past_due" if status == Subscription.Status.PAST_DUE else "expired"
        emit_swept(f"subscription.{kind}", claim, now=now)
        queue_swept_emails(kind, claim)
    return moved


@transaction.atomic
def _end_unpaid_trials(*, now: datetime) -> int:
    """
    2b. No grace for a trial: its first charge unpaid at the end, access ends. A trial canceled by the
    user is left to step 4 (canceled at period end, never charged).
    """
    return _lapse(
        Subscription.objects.filter(status=Subscription.Status.TRIALING, cancel_at_period_end=False, end_date__lte=now),
        status=Subscription.Status.EXPIRED, reason=Subscription.Reason.TRIAL_ENDED, now=now,
    )


@transaction.atomic
def _expire_past_grace(*, now: datetime) -> int:
    """3. Live subscriptions past grace → expired."""
    return _lapse(
        Subscription.objects.filter(status__in=Subscription.LIVE_STATUSES, cancel_at_period_end=False, end_date__lte=grace_start(now)),
        status=Subscription.Status.EXPIRED, reason=Subscription.Reason.EXPIRED, now=now,
    )


@transaction.atomic
def _cancel_at_period_end(*, now: datetime) -> int:
    """4. Subscriptions canceled at period end whose period is over → canceled; the reason stays `canceled_by_user`."""
    return Subscription.objects.filter(
        status__in=Subscription.LIVE_STATUSES, cancel_at_period_end=True, end_date__lte=now
    ).update(status=Subscription.Status.CANCELED, last_transition_at=now, updated_at=now)


@transaction.atomic
def _close_orphan_renewals(*, now: datetime) -> int:
    """5. Renewal charges of subscriptions no longer live → expired: still payable (activate_checkout accepts a late payment), no longer open."""
    return update_checkouts(
        Checkout.objects.filter(status=Checkout.Status.PENDING, purpose=Checkout.Purpose.RENEWAL).exclude(
            Exists(Subscription.objects.filter(pk=OuterRef("subscription_id"), status__in=Subscription.LIVE_STATUSES))
        ),
        status=Checkout.Status.EXPIRED,
        updated_at=now,
    )


@transaction.atomic
def _start_grace(*, now: datetime) -> int:
    """6. Active subscriptions past `end_date` → past_due (`grace_started`)."""
    return _lapse(
        Subscription.objects.filter(status=Subscription.Status.ACTIVE, cancel_at_period_end=False, end_date__lte=now),
        status=Subscription.Status.PAST_DUE, reason=Subscription.Reason.GRACE_STARTED, now=now,
    )


@transaction.atomic
def _issue_renewals(*, now: datetime, result: SweepResult) -> None:
    claim = uuid.uuid4()
    open_renewal = Checkout.objects.filter(
        subscription=OuterRef("pk"), purpose=Checkout.Purpose.RENEWAL, status=Checkout.Status.PENDING
    )
    # The compare-and-set: only conditions on the row's own columns, so a
    # concurrent sweep that waited for our row locks re-checks them and skips.
    claimed = (
        Subscription.objects.filter(
            status__in=Subscription.LIVE_STATUSES,
            cancel_at_period_end=False,
            end_date__lte=now + timedelta(days=settings.RENEWAL_NOTICE_DAYS),
            end_date__gt=grace_start(now),
        )
        .filter(Q(renewal_issued_for__isnull=True) | ~Q(renewal_issued_for=F("end_date")))
        # Sold through the marketplace: it renews there, never with a PIX of ours
        # (unless one of our checkouts has paid it since: then it is ours).
        .exclude(
            Q(plan_match_rule__in=MARKETPLACE_MATCH_RULES)
            | (~Q(external_id="") & ~Q(plan_match_rule=Subscription.PlanMatch.CHECKOUT))
        )
        .exclude(Exists(open_renewal))  # an admin extension keeps the charge already issued
        .update(renewal_issued_for=F("end_date"), sweep_claim=claim, updated_at=now)
    )
    if not claimed:
        return
    last_paid = Checkout.objects.filter(subscription=OuterRef("pk"), status=Checkout.Status.PAID).order_by("-paid_at", "-pk")
    # Plain values, not model instances: a backlog of renewals is read in one
    # query without building a user, a plan and a subscription object per row.
    rows = (
        Subscription.objects.filter(sweep_claim=claim)
        .annotate(
            last_document=Subquery(last_paid.values("customer_document")[:1], output_field=EncryptedTextField()),
            last_phone=Subquery(last_paid.values("customer_phone")[:1]),
            last_name=Subquery(last_paid.values("customer_name")[:1]),
        )
        .order_by("pk")
        .values(
            "pk", "user_id", "user__email", "user__name", "end_date", "status", "last_document", "last_phone", "last_name",
            "plan_id", "plan__name", "plan__price_cents", "plan__duration_days", "plan__accepts_pix", "plan__accepts_card",
            "next_plan_id", "next_plan__name", "next_plan__price_cents", "next_plan__duration_days",
            "next_plan__accepts_pix", "next_plan__accepts_card",
            "coupon_id", "coupon__kind", "coupon__value", "coupon_renewals_left",
            "card_id", "card_brand", "card_last_digits",
        )
    )
    rows = list(rows)
    named = coupon_plan_ids({row["coupon_id"] for row in rows if row["coupon_id"]})
    checkouts, notices = [], []
    titles = {}
    for row in rows:
        key = "next_plan__" if row["next_plan_id"] else "plan__"
        plan_id = row["next_plan_id"] or row["plan_id"]
        name, price = row[key + "name"], row[key + "price_cents"]
        method = Checkout.Method.PIX if row[key + "accepts_pix"] or not row[key + "accepts_card"] else Checkout.Method.CARD
        # A saved card renews by itself at end_date (contract §8); the notice names it.
        card = card_label(row["card_brand"], row["card_last_digits"]) if row["card_id"] else ""
        if card:
            method = Checkout.Method.CARD
        if name not in titles:
            titles[name] = _("%(plan)s (renewal)") % {"plan": name}
        customer_name = (row["last_name"] or row["user__name"] or row["user__email"])[:150]
        # A recurring coupon (Coupon.renewals) discounts its renewals while some are left, and only on the
        # plans it names (a scheduled downgrade may leave them); else the plan price.
        coupon_id = None
        if (
            row["coupon_id"]
            and (row["coupon_renewals_left"] is None or row["coupon_renewals_left"] > 0)
            and coupon_applies_to_plan(coupon_id=row["coupon_id"], plan_id=plan_id, named=named)
        ):
            coupon_id = row["coupon_id"]
        sold = price_checkout(
            plan_price_cents=price, coupon_kind=row["coupon__kind"] if coupon_id else None, coupon_value=row["coupon__value"] or 0
        )
        checkout = Checkout(
            user_id=row["user_id"],
            plan_id=plan_id,
            purpose=Checkout.Purpose.RENEWAL,
            subscription_id=row["pk"],
            payment_method=method,
            plan_price_cents=price,
            plan_duration_days=row[key + "duration_days"],
            bumps_cents=sold.bumps_cents,
            credit_cents=sold.credit_cents,
            coupon_id=coupon_id,
            discount_cents=sold.discount_cents,
            total_cents=sold.total_cents,
            items=[{"title": titles[name], "unit_price_cents": sold.plan_line_cents, "quantity": 1}],
            customer_name=customer_name,
            customer_email=row["user__email"],
            customer_document=row["last_document"] or "",
            customer_phone=row["last_phone"] or "",
            created_at=now,
        )
        checkouts.append(checkout)
        notices.append([
            row["user__email"], customer_name, name, sold.total_cents, str(checkout.public_id), row["end_date"].isoformat(),
            row["status"] == Subscription.Status.TRIALING, card,
        ])
    Checkout.objects.bulk_create(checkouts)
    result.renewals_issued = len(checkouts)
    result.renewal_checkout_ids = [c.public_id for c in checkouts]
    transaction.on_commit(lambda: queue_renewal_notices(notices))


@transaction.atomic
def _send_recovery_reminders(*, now: datetime, result: SweepResult) -> None:
    """
    Reminders of unpaid first checkouts, after each of CHECKOUT_RECOVERY_MINUTES.
    Latest step first, so a checkout that is past two steps gets only the
    later one; each step is one compare-and-set UPDATE on the checkout's own
    `recovery_reminders_sent` (a concurrent sweep re-checks it and skips).
    Never for a paid checkout, a trial, an address that unsubscribed, or a
    customer who has bought since.
    """
    steps = list(enumerate(settings.CHECKOUT_RECOVERY_MINUTES, start=1))
    if not steps:
        return
    # Checkouts getting their first reminder are tagged `first_claim` (the CASE reads the row's old
    # `recovery_reminders_sent`): their `checkout.abandoned` is written in this same transaction.
    claim, first_claim = uuid.uuid4(), uuid.uuid4()
    tag = Case(When(recovery_reminders_sent=0, then=Value(first_claim)), default=Value(claim))
    C = Checkout.Status
    bought_since = Checkout.objects.filter(
        customer_email=OuterRef("customer_email"), status=C.PAID, created_at__gte=OuterRef("created_at")
    )
    opted_out = ReminderOptOut.objects.filter(email=OuterRef("customer_email"))
    claimed = 0
    for number, minutes in reversed(steps):
        due = now - timedelta(minutes=minutes)
        claimed += (
            Checkout.objects.filter(
                purpose=Checkout.Purpose.NEW,
                status__in=[C.PENDING, C.EXPIRED],
                is_trial=False,
                total_cents__gt=0,
                recovery_reminders_sent__lt=number,
                created_at__lte=due,
                created_at__gt=due - RECOVERY_WINDOW,
            )
            .exclude(Exists(opted_out))
            .exclude(Exists(bought_since))
            .update(recovery_reminders_sent=number, recovery_claim=tag, updated_at=now)
        )
    if not claimed:
        return
    emit_checkouts_abandoned(first_claim, now=now)
    rows = Checkout.objects.filter(recovery_claim__in=[claim, first_claim]).order_by("pk").values_list(
        "customer_email", "customer_name", "plan__name", "total_cents", "public_id", "status"
    )
    reminders = [[email, name, plan, total, str(public_id), status] for email, name, plan, total, public_id, status in rows]
    result.reminders_sent = len(reminders)
    transaction.on_commit(lambda: queue_recovery_reminders(reminders))
