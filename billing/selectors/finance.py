"""
The finance dashboard's figures (the admin's "Painel financeiro"): revenue by month and day, MRR,
pending PIX and refunds, sources, renewals due, churn; the offers' funnel and coupons; payment
methods and renewals by method. Reads only, each a fixed number of queries whatever the data.
"""


from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from math import lcm

from django.db.models import Count, Exists, F, OuterRef, Q, Sum
from django.db.models.fields.json import KT
from django.db.models.functions import TruncDate, TruncMonth
from django.utils import timezone
from django.utils.formats import date_format

from billing.models import CardAttempt, Checkout, Coupon, ReconciliationItem, RefundRequest, Subscription
from billing.money import format_brl


@dataclass
class RevenuePoint:
    period: date
    cents: int
    count: int


@dataclass
class SourceFigures:
    """Checkouts of the window credited to one last-touch utm_source/utm_campaign ("" = none)."""

    utm_source: str
    utm_campaign: str
    checkouts: int
    paid: int
    revenue_cents: int

    @property
    def conversion_pct(self) -> float | None:
        return round(100 * self.paid / self.checkouts, 1) if self.checkouts else None


# The dashboard lists the biggest sources; the checkout admin's filters reach the rest.
SOURCE_ROWS = 50


@dataclass
class FinanceFigures:
    now: datetime
    revenue_by_day: list[RevenuePoint]
    revenue_by_month: list[RevenuePoint]
    revenue_30d_cents: int
    active_subscribers: int
    mrr_cents: int
    pending_pix_count: int
    pending_pix_cents: int
    checkouts_30d: int
    paid_checkouts_30d: int
    conversion_pct: float | None
    renewals_due_7d: int
    renewals_due_7d_cents: int
    churned_30d: int
    churn_pct: float | None
    late_payments_30d: int = 0
    # Partial payments (money that arrived short) not yet resolved by a person; cents where known.
    partial_payments_count: int = 0
    partial_payments_cents: int = 0
    # Refunds by the day they were confirmed (revenue above is what was paid and kept).
    refunds_30d_count: int = 0
    refunds_30d_cents: int = 0
    # Withdrawals still to refund (staff, where the gateway has no refund API); overdue: past their deadline.
    pending_refunds_count: int = 0
    pending_refunds_cents: int = 0
    pending_refunds_overdue: int = 0
    # Last-touch source and campaign of the window's checkouts, biggest revenue first.
    by_source: list[SourceFigures] = field(default_factory=list)
    extra: dict = field(default_factory=dict)


def _month_start(day: date, back: int) -> date:
    month_index = day.year * 12 + (day.month - 1) - back
    return date(month_index // 12, month_index % 12 + 1, 1)


def get_finance_figures(*, now: datetime | None = None) -> FinanceFigures:
    """
    The finance dashboard, in a fixed number of queries. Revenue is money
    received and kept: paid checkouts (refunded ones no longer count), by
    payment day in the site's time zone. MRR normalises each active
    subscription's plan price to 30 days (price × 30 / duration), rounded once.
    """
    now = now or timezone.now()
    window = now - timedelta(days=30)
    revenue_by_day, revenue_by_month = _revenue_points(now)
    active_subscribers = Subscription.objects.granting_access(now).values("user_id").distinct().count()
    mrr_cents = _mrr_cents(now)
    pending = _pending_pix_and_refunds(window)
    recent = _recent_checkouts(window)
    conversion = round(100 * recent["paid"] / recent["total"], 1) if recent["total"] else None
    by_source = _figures_by_source(window)
    partial = ReconciliationItem.objects.filter(kind=ReconciliationItem.Kind.PARTIAL_PAYMENT, resolved=False).aggregate(
        n=Count("pk"), cents=Sum("amount_cents")
    )
    owed = RefundRequest.objects.filter(status=RefundRequest.Status.PENDING).aggregate(
        n=Count("pk"), cents=Sum("amount_cents"), overdue=Count("pk", filter=Q(deadline__lt=now))
    )
    renewals_due, renewals_due_cents = _renewals_due_7d(now)
    churned, churn = _churn_30d(window)

    return FinanceFigures(
        now=now,
        revenue_by_day=revenue_by_day,
        revenue_by_month=revenue_by_month,
        revenue_30d_cents=sum(p.cents for p in revenue_by_day),
        active_subscribers=active_subscribers,
        mrr_cents=mrr_cents,
        pending_pix_count=pending["n"] or 0,
        pending_pix_cents=pending["cents"] or 0,
        checkouts_30d=recent["total"],
        paid_checkouts_30d=recent["paid"],
        conversion_pct=conversion,
        renewals_due_7d=renewals_due,
        renewals_due_7d_cents=renewals_due_cents,
        churned_30d=churned,
        churn_pct=churn,
        late_payments_30d=recent["late"],
        partial_payments_count=partial["n"] or 0,
        partial_payments_cents=partial["cents"] or 0,
        refunds_30d_count=pending["refunded_n"] or 0,
        refunds_30d_cents=pending["refunded_cents"] or 0,
        pending_refunds_count=owed["n"] or 0,
        pending_refunds_cents=owed["cents"] or 0,
        pending_refunds_overdue=owed["overdue"] or 0,
        by_source=by_source,
    )


def _revenue_points(now: datetime) -> tuple[list[RevenuePoint], list[RevenuePoint]]:
    """Paid checkouts by payment day (the last 30) and month (the last 12), in the site's time zone; empty ones as 0."""
    tz = timezone.get_current_timezone()
    today = timezone.localtime(now, tz).date()
    first_day = today - timedelta(days=29)
    first_month = _month_start(today, 11)
    paid = Checkout.objects.filter(status=Checkout.Status.PAID, paid_at__isnull=False)
    by_day = {
        row["day"]: row
        for row in paid.filter(paid_at__gte=datetime.combine(first_day, datetime.min.time(), tzinfo=tz))
        .annotate(day=TruncDate("paid_at", tzinfo=tz))
        .values("day")
        .annotate(cents=Sum("total_cents"), n=Count("pk"))
    }
    by_month = {
        (row["month"].date() if isinstance(row["month"], datetime) else row["month"]): row
        for row in paid.filter(paid_at__gte=datetime.combine(first_month, datetime.min.time(), tzinfo=tz))
        .annotate(month=TruncMonth("paid_at", tzinfo=tz))
        .values("month")
        .annotate(cents=Sum("total_cents"), n=Count("pk"))
    }
    revenue_by_day = []
    for offset in range(30):
        day = first_day + timedelta(days=offset)
        row = by_day.get(day) or {}
        revenue_by_day.append(RevenuePoint(day, row.get("cents") or 0, row.get("n") or 0))
    revenue_by_month = []
    for back in range(11, -1, -1):
        month = _month_start(today, back)
        row = by_month.get(month) or {}
        revenue_by_month.append(RevenuePoint(month, row.get("cents") or 0, row.get("n") or 0))
    return revenue_by_day, revenue_by_month


def _mrr_cents(now: datetime) -> int:
    """Σ price × 30 / duration over active subscriptions, one rounding step (half up)."""
    numerator, denominator = 0, 1
    per_plan = (
        Subscription.objects.filter(status=Subscription.Status.ACTIVE, end_date__gt=now)
        .values("plan__price_cents", "plan__duration_days")
        .annotate(n=Count("pk"))
    )
    rows = list(per_plan)
    for row in rows:
        denominator = lcm(denominator, row["plan__duration_days"])
    for row in rows:
        numerator += row["n"] * row["plan__price_cents"] * 30 * (denominator // row["plan__duration_days"])
    return (2 * numerator + denominator) // (2 * denominator)


def _pending_pix_and_refunds(window: datetime) -> dict:
    """Pending PIX, and refunds by the day they were confirmed, in one pass."""
    open_pix = Q(status=Checkout.Status.PENDING, payment_method=Checkout.Method.PIX)
    refunded_recently = Q(status=Checkout.Status.REFUNDED, refunded_at__gte=window)
    return Checkout.objects.filter(open_pix | refunded_recently).aggregate(
        n=Count("pk", filter=open_pix),
        cents=Sum("total_cents", filter=open_pix),
        refunded_n=Count("pk", filter=refunded_recently),
        refunded_cents=Sum("total_cents", filter=refunded_recently),
    )


def _recent_checkouts(window: datetime) -> dict:
    """Checkouts created in the window: how many, how many paid (refunded ones included), how many paid late."""
    return Checkout.objects.filter(created_at__gte=window).aggregate(
        total=Count("pk"),
        paid=Count("pk", filter=Q(status__in=[Checkout.Status.PAID, Checkout.Status.REFUNDED])),
        late=Count("pk", filter=Q(is_late=True)),
    )


def _figures_by_source(window: datetime) -> list[SourceFigures]:
    """The window's checkouts by last-touch campaign, the best earners first (SOURCE_ROWS of them)."""
    C = Checkout.Status
    return [
        SourceFigures(
            utm_source=row["source"] or "", utm_campaign=row["campaign"] or "", checkouts=row["total"],
            paid=row["paid"], revenue_cents=row["cents"] or 0,
        )
        for row in Checkout.objects.filter(created_at__gte=window)
        .annotate(source=KT("tracking__last__utm_source"), campaign=KT("tracking__last__utm_campaign"))
        .values("source", "campaign")
        .annotate(
            total=Count("pk"),
            paid=Count("pk", filter=Q(status__in=[C.PAID, C.REFUNDED])),
            cents=Sum("total_cents", filter=Q(status=C.PAID)),
        )
        .order_by(F("cents").desc(nulls_last=True), "-total", "source", "campaign")[:SOURCE_ROWS]
    ]


def _renewals_due_7d(now: datetime) -> tuple[int, int]:
    """Live subscriptions that renew within 7 days, and what they will be charged (the next plan's price when one is set)."""
    due = (
        Subscription.objects.filter(
            status__in=Subscription.LIVE_STATUSES, cancel_at_period_end=False, end_date__gt=now,
            end_date__lte=now + timedelta(days=7),
        )
        .select_related(None)
        .values("plan__price_cents", "next_plan__price_cents")
    )
    due_rows = list(due)
    return len(due_rows), sum(r["next_plan__price_cents"] or r["plan__price_cents"] for r in due_rows)


def _churn_30d(window: datetime) -> tuple[int, float | None]:
    """
    Churn: subscriptions that ended in the window (never-paid ones never started),
    over those that were live at some point of it: still active + churned.
    """
    S = Subscription.Status
    churned = Subscription.objects.filter(
        status__in=[S.EXPIRED, S.CANCELED, S.REFUNDED], last_transition_at__gte=window
    ).exclude(last_reason=Subscription.Reason.NEVER_PAID).count()
    live_now = Subscription.objects.live().count()
    return churned, round(100 * churned / (live_now + churned), 1) if (live_now + churned) else None


def bar_chart(points: list[RevenuePoint], *, label_format: str, width: int = 720, height: int = 180) -> dict:
    """Geometry for a server-rendered SVG bar chart (no JavaScript, no CDN)."""
    top = max((p.cents for p in points), default=0) or 1
    slot = width / max(len(points), 1)
    bar_width = max(slot * 0.7, 1)
    bars = []
    for index, point in enumerate(points):
        bar_height = round(point.cents / top * (height - 20), 1)
        bars.append(
            {
                "x": round(index * slot + (slot - bar_width) / 2, 1),
                "y": round(height - bar_height, 1),
                "width": round(bar_width, 1),
                "height": bar_height,
                "label": date_format(point.period, label_format),
                "value": format_brl(point.cents),
                "count": point.count,
                "show_label": len(points) <= 12 or index % 5 == 0 or index == len(points) - 1,
                "label_x": 0 if index == 0 else width if index == len(points) - 1 else round(index * slot + slot / 2, 1),
                "anchor": "start" if index == 0 else "end" if index == len(points) - 1 else "middle",
            }
        )
    return {"bars": bars, "width": width, "height": height, "max": format_brl(top if top != 1 else 0)}


# ---------------------------------------------------------------------------
# Offers on the finance dashboard (issue 13): coupons, trials, recovered sales,
# the renewal funnel and churn by cause. A fixed number of queries (six),
# whatever the number of rows: every figure is one aggregate.
# ---------------------------------------------------------------------------

BOUGHT = (Checkout.Status.PAID, Checkout.Status.REFUNDED)


@dataclass
class CouponRow:
    code: str
    checkouts: int  # first purchases with the coupon
    paid: int
    discount_cents: int  # given on paid checkouts, renewals of recurring coupons included
    uses: int

    @property
    def conversion_pct(self) -> float | None:
        return round(100 * self.paid / self.checkouts, 1) if self.checkouts else None


@dataclass
class FunnelRow:
    month: date
    issued: int
    opened: int  # a PIX code was generated for it (the customer opened the charge)
    paid: int


@dataclass
class OfferFigures:
    coupons: list = field(default_factory=list)  # CouponRow, checkouts of the last 30 days
    trials_started: int = 0  # last 90 days
    trials_converted: int = 0
    trials_ended_unpaid: int = 0
    trials_running: int = 0
    reminded_30d: int = 0
    recovered_30d: int = 0
    recovered_30d_cents: int = 0
    funnel: list = field(default_factory=list)  # FunnelRow, 12 months, oldest first
    churn_voluntary_30d: int = 0
    churn_involuntary_30d: int = 0
    churn_other_30d: int = 0
    mrr_discount_cents: int = 0  # recurring coupons' discount on active subscriptions, normalised to 30 days

    @property
    def trial_conversion_pct(self) -> float | None:
        decided = self.trials_converted + self.trials_ended_unpaid
        return round(100 * self.trials_converted / decided, 1) if decided else None


def get_offer_figures(*, now: datetime | None = None) -> OfferFigures:
    """What the offers bring: coupon conversion and discount, trial → paid, recovered sales, renewal funnel, churn by cause."""
    now = now or timezone.now()
    tz = timezone.get_current_timezone()
    window = now - timedelta(days=30)
    S, C, R = Subscription.Status, Checkout.Status, Subscription.Reason
    figures = OfferFigures()

    coupon_rows = (
        Checkout.objects.filter(coupon__isnull=False, created_at__gte=window)
        .values("coupon__code", "coupon__uses")
        .annotate(
            # Conversion over first purchases; the discount given includes recurring coupons' renewals.
            n=Count("pk", filter=Q(purpose=Checkout.Purpose.NEW)),
            paid=Count("pk", filter=Q(purpose=Checkout.Purpose.NEW, status__in=BOUGHT)),
            discount=Sum("discount_cents", filter=Q(status__in=BOUGHT)),
        )
        .order_by("-paid", "coupon__code")
    )
    figures.coupons = [
        CouponRow(r["coupon__code"], r["n"], r["paid"], r["discount"] or 0, r["coupon__uses"]) for r in coupon_rows
    ]

    paid_renewal = Checkout.objects.filter(subscription=OuterRef("subscription_id"), purpose=Checkout.Purpose.RENEWAL, status__in=BOUGHT)
    trials = Checkout.objects.filter(is_trial=True, status=C.PAID, paid_at__gte=now - timedelta(days=90)).aggregate(
        started=Count("pk"),
        converted=Count("pk", filter=Q(Exists(paid_renewal))),
        ended=Count("pk", filter=Q(subscription__last_reason=R.TRIAL_ENDED)),
        running=Count("pk", filter=Q(subscription__status=S.TRIALING)),
    )
    figures.trials_started, figures.trials_converted = trials["started"], trials["converted"]
    figures.trials_ended_unpaid, figures.trials_running = trials["ended"], trials["running"]

    recovery = Checkout.objects.filter(purpose=Checkout.Purpose.NEW, created_at__gte=window).aggregate(
        reminded=Count("pk", filter=Q(recovery_reminders_sent__gt=0)),
        recovered=Count("pk", filter=Q(is_recovered=True, status=C.PAID)),
        cents=Sum("total_cents", filter=Q(is_recovered=True, status=C.PAID)),
    )
    figures.reminded_30d, figures.recovered_30d = recovery["reminded"], recovery["recovered"]
    figures.recovered_30d_cents = recovery["cents"] or 0

    today = timezone.localtime(now, tz).date()
    first_month = _month_start(today, 11)
    funnel = {
        (row["month"].date() if isinstance(row["month"], datetime) else row["month"]): row
        for row in Checkout.objects.filter(
            purpose=Checkout.Purpose.RENEWAL, created_at__gte=datetime.combine(first_month, datetime.min.time(), tzinfo=tz)
        )
        .annotate(month=TruncMonth("created_at", tzinfo=tz))
        .values("month")
        .annotate(
            issued=Count("pk"),
            opened=Count("pk", filter=~Q(gateway_transaction_id="") | Q(status__in=BOUGHT)),
            paid=Count("pk", filter=Q(status__in=BOUGHT)),
        )
    }
    for back in range(11, -1, -1):
        month = _month_start(today, back)
        row = funnel.get(month) or {}
        figures.funnel.append(FunnelRow(month, row.get("issued", 0), row.get("opened", 0), row.get("paid", 0)))

    churn = Subscription.objects.filter(
        status__in=[S.EXPIRED, S.CANCELED, S.REFUNDED], last_transition_at__gte=window
    ).exclude(last_reason=R.NEVER_PAID).aggregate(
        voluntary=Count("pk", filter=Q(status=S.CANCELED, last_reason=R.CANCELED_BY_USER)),
        involuntary=Count("pk", filter=Q(status=S.EXPIRED, last_reason__in=[R.EXPIRED, R.TRIAL_ENDED])),
        total=Count("pk"),
    )
    figures.churn_voluntary_30d, figures.churn_involuntary_30d = churn["voluntary"], churn["involuntary"]
    figures.churn_other_30d = churn["total"] - churn["voluntary"] - churn["involuntary"]

    discounted = (
        Subscription.objects.filter(status=S.ACTIVE, end_date__gt=now, coupon__isnull=False)
        .filter(Q(coupon_renewals_left__isnull=True) | Q(coupon_renewals_left__gt=0))
        .values("plan__price_cents", "plan__duration_days", "coupon__kind", "coupon__value")
        .annotate(n=Count("pk"))
    )
    rows = list(discounted)
    denominator = 1
    for row in rows:
        denominator = lcm(denominator, row["plan__duration_days"])
    numerator = sum(
        row["n"]
        * Coupon.discount_for(kind=row["coupon__kind"], value=row["coupon__value"], price_cents=row["plan__price_cents"])
        * 30
        * (denominator // row["plan__duration_days"])
        for row in rows
    )
    figures.mrr_discount_cents = (2 * numerator + denominator) // (2 * denominator)
    return figures


# ---------------------------------------------------------------------------
# Payment methods on the finance dashboard (issue 21): revenue and conversion
# by method, and automatic card renewals against PIX renewals. Two queries.
# ---------------------------------------------------------------------------


@dataclass
class MethodRow:
    method: str  # "pix" | "card"
    checkouts: int  # first purchases of the last 30 days
    paid: int
    revenue_cents: int  # every paid checkout of the last 30 days (renewals and upgrades too)

    @property
    def conversion_pct(self) -> float | None:
        return round(100 * self.paid / self.checkouts, 1) if self.checkouts else None


@dataclass
class RenewalMethodFigures:
    """Renewal charges issued in the last 90 days: saved cards charged automatically, against PIX renewals."""

    card_issued: int = 0
    card_paid_first_try: int = 0
    card_paid_after_retries: int = 0
    card_unpaid: int = 0  # ended unpaid (the subscription expired or was canceled)
    pix_issued: int = 0
    pix_paid: int = 0

    def pct(self, part: int, whole: int) -> float | None:
        return round(100 * part / whole, 1) if whole else None

    @property
    def card_success_pct(self) -> float | None:
        return self.pct(self.card_paid_first_try + self.card_paid_after_retries, self.card_issued)

    @property
    def pix_success_pct(self) -> float | None:
        return self.pct(self.pix_paid, self.pix_issued)


def get_method_figures(*, now: datetime | None = None) -> tuple[list[MethodRow], RenewalMethodFigures]:
    now = now or timezone.now()
    window = now - timedelta(days=30)
    by_method = {
        row["payment_method"]: row
        for row in Checkout.objects.filter(created_at__gte=window, total_cents__gt=0)
        .values("payment_method")
        .annotate(
            n=Count("pk", filter=Q(purpose=Checkout.Purpose.NEW)),
            paid=Count("pk", filter=Q(purpose=Checkout.Purpose.NEW, status__in=BOUGHT)),
            cents=Sum("total_cents", filter=Q(status__in=BOUGHT)),
        )
    }
    rows = [
        MethodRow(method, by_method.get(method, {}).get("n", 0), by_method.get(method, {}).get("paid", 0), by_method.get(method, {}).get("cents") or 0)
        for method in (Checkout.Method.PIX, Checkout.Method.CARD)
    ]
    automatic = CardAttempt.objects.filter(checkout=OuterRef("pk"), kind=CardAttempt.Kind.RENEWAL)
    paid_first = automatic.filter(status=CardAttempt.Status.PAID, number=1)
    paid_later = automatic.filter(status=CardAttempt.Status.PAID, number__gt=1)
    renewals = Checkout.objects.filter(purpose=Checkout.Purpose.RENEWAL, created_at__gte=now - timedelta(days=90)).aggregate(
        card=Count("pk", filter=Q(Exists(automatic))),
        first=Count("pk", filter=Q(Exists(paid_first))),
        later=Count("pk", filter=Q(Exists(paid_later))),
        card_unpaid=Count("pk", filter=Q(Exists(automatic), status__in=[Checkout.Status.EXPIRED, Checkout.Status.CANCELED, Checkout.Status.FAILED])),
        pix=Count("pk", filter=~Q(Exists(automatic))),
        pix_paid=Count("pk", filter=~Q(Exists(automatic)) & Q(status__in=BOUGHT)),
    )
    return rows, RenewalMethodFigures(
        card_issued=renewals["card"], card_paid_first_try=renewals["first"], card_paid_after_retries=renewals["later"],
        card_unpaid=renewals["card_unpaid"], pix_issued=renewals["pix"], pix_paid=renewals["pix_paid"],
    )


