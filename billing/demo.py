"""
Demo sales for `make run` (called by `manage.py load_demo` with DEBUG on), so
the finance dashboard shows real-looking figures the first time it is opened:
about four months of sales (some with the demo coupon, from a few campaigns),
renewals paid and unpaid, cancellations, refunds, a trial converted, a trial
ended unpaid, a trial running, checkouts abandoned and one recovered.

Marked as demo data: every customer's e-mail is @demo.creatorflix.local and
every checkout's campaign starts with "demo-". No gateway is called: the rows
are made by the services (create_checkout, activate_checkout, the sweep,
cancel_subscription, refund_checkout...) with `now=` in the past, and the
"PIX generated" of a checkout is written on its row with the sandbox gateway.
The sweep runs once per simulated day (it issues the renewals and sends the
recovery reminders); its e-mails go to the demo addresses only while it runs
in-process, and are dropped here. Idempotent: a second run finds the demo
customers and adds nothing.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.test.utils import override_settings
from django.utils import timezone

from billing.models import (
    Checkout,
    Coupon,
    PaymentGateway,
    Plan,
    RefundRequest,
    Subscription,
)
from billing.services import (
    activate_checkout,
    cancel_subscription,
    create_checkout,
    create_coupon,
    refund_checkout,
    settle_free_checkout,
    sweep_subscriptions,
)

DEMO_DOMAIN = "demo.creatorflix.local"
DEMO_CAMPAIGN_PREFIX = "demo-"
DEMO_COUPON = "BEMVINDO10"
DEMO_DAYS = 120
SOURCES = [("instagram", "demo-stories"), ("tiktok", "demo-lancamento"), ("google", "demo-busca"), ("", "")]
FIRST_NAMES = ["Ana", "Bruno", "Carla", "Diego", "Elisa", "Fábio", "Gabi", "Hugo", "Iara", "João", "Lara", "Marcos"]


def demo_email(n: int) -> str:
    return f"cliente{n:03d}@{DEMO_DOMAIN}"


def is_loaded() -> bool:
    return get_user_model().objects.filter(email__endswith="@" + DEMO_DOMAIN).exists()


def load_demo_sales(*, now: datetime | None = None) -> str:
    """Returns a summary for the command's output (", N demo sales" or that they were there)."""
    if is_loaded():
        return ", demo sales already loaded"
    now = now or timezone.now()
    # In-process e-mails (renewal notices, reminders) would go to the demo addresses: dropped.
    with override_settings(EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend"), transaction.atomic():
        sales = _Simulation(now=now).run()
    return f", {sales} demo sales over {DEMO_DAYS} days (customers @{DEMO_DOMAIN})"


class _Simulation:
    def __init__(self, *, now: datetime):
        self.now = now
        self.rng = random.Random(13)
        self.gateway = PaymentGateway.objects.get(kind=PaymentGateway.Kind.SANDBOX)
        self.plans = list(Plan.objects.filter(is_active=True, checkout_url="").order_by("display_order", "pk"))
        self.coupon = Coupon.objects.filter(code__iexact=DEMO_COUPON).first() or create_coupon(
            code=DEMO_COUPON, kind=Coupon.Kind.PERCENT, value=10, starts_at=now - timedelta(days=DEMO_DAYS + 30),
            renewals=None,
        )
        self.trial_plan = next((p for p in self.plans if p.trial_days), None)
        self.customers = 0
        self.sales = 0
        self.lapsing = set()  # subscriptions whose renewals are never paid (involuntary churn)
        self.later = defaultdict(list)  # day → actions

    # -- helpers ----------------------------------------------------------
    def _customer(self):
        self.customers += 1
        name = f"{FIRST_NAMES[self.customers % len(FIRST_NAMES)]} Demo {self.customers}"
        return get_user_model().objects.create_user(email=demo_email(self.customers), name=name)

    def _opened(self, checkout: Checkout, at: datetime) -> str:
        """The PIX the buyer generated, written on the row (no gateway is called)."""
        transaction_id = f"demo-{checkout.public_id}"
        Checkout.objects.filter(pk=checkout.pk).update(
            gateway=self.gateway, gateway_transaction_id=transaction_id, gateway_status="pending",
            pix_expires_at=at + timedelta(minutes=30),
        )
        return transaction_id

    def _new_checkout(self, *, at: datetime, user, plan=None, coupon=False, trial=False) -> Checkout:
        source, campaign = self.rng.choice(SOURCES)
        tracking = {"last": {"utm_source": source, "utm_campaign": campaign}} if source else {"last": {"utm_campaign": "demo-direto"}}
        return create_checkout(
            plan=plan or self.rng.choices(self.plans, weights=([6, 3, 1] + [1] * len(self.plans))[: len(self.plans)])[0],
            customer_name=user.name, customer_email=user.email, user=user,
            coupon_code=DEMO_COUPON if coupon else "", trial=trial, tracking=tracking, now=at,
        )

    # -- the days -----------------------------------------------------------
    def run(self) -> int:
        for day in range(DEMO_DAYS, 0, -1):
            at = self.now - timedelta(days=day)
            for action in self.later.pop(day, []):
                action(at)
            if day == 20:
                self._recovered(at)
            if day % 5 == 0:
                self._abandoned(at)
            sweep_subscriptions(now=at)
            self._pay_renewals(at)
            if day % 2 == 0:
                self._sale(at, day)
            if self.trial_plan and day in (60, 45, 3):
                self._trial(at, converts=day == 60)
        sweep_subscriptions(now=self.now - timedelta(minutes=1))
        return self.sales

    def _sale(self, at: datetime, day: int) -> None:
        n = self.sales = self.sales + 1
        checkout = self._new_checkout(at=at, user=self._customer(), coupon=n % 4 == 0)
        transaction_id = self._opened(checkout, at)
        subscription = activate_checkout(checkout=checkout, paid_at=at + timedelta(minutes=3), now=at + timedelta(minutes=3), transaction_id=transaction_id)
        if n % 7 == 3:
            self.lapsing.add(subscription.pk)
        if n % 6 == 5 and day > 10:
            self.later[day - 8].append(lambda when, pk=subscription.pk: self._cancel(pk, when))
        if n % 11 == 9 and day > 3:
            self.later[day - 2].append(
                lambda when, pk=checkout.pk: refund_checkout(checkout=Checkout.objects.get(pk=pk), now=when, closed_by=RefundRequest.ClosedBy.ADMIN)
            )

    def _cancel(self, pk: int, at: datetime) -> None:
        subscription = Subscription.objects.get(pk=pk)
        if subscription.is_live and not subscription.cancel_at_period_end:
            cancel_subscription(subscription=subscription, reason="Demo: mudou de ideia", now=at)

    def _abandoned(self, at: datetime) -> None:
        """A PIX generated and never paid: reminded by the sweep, then expired."""
        checkout = self._new_checkout(at=at - timedelta(hours=2), user=self._customer())
        self._opened(checkout, at - timedelta(hours=2))

    def _recovered(self, at: datetime) -> None:
        """Unpaid two hours, reminded by this day's sweep, paid an hour later: a recovered sale."""
        checkout = self._new_checkout(at=at - timedelta(hours=2), user=self._customer())
        transaction_id = self._opened(checkout, at - timedelta(hours=2))
        self.later_today(lambda when: activate_checkout(
            checkout=checkout, paid_at=when + timedelta(hours=1), now=when + timedelta(hours=1), transaction_id=transaction_id
        ))

    def later_today(self, action) -> None:
        self._after_sweep = getattr(self, "_after_sweep", []) + [action]

    def _trial(self, at: datetime, *, converts: bool) -> None:
        checkout = self._new_checkout(at=at, user=self._customer(), plan=self.trial_plan, trial=True)
        settle_free_checkout(checkout=checkout, now=at)
        if not converts:
            self.lapsing.add(Checkout.objects.get(pk=checkout.pk).subscription_id)

    def _pay_renewals(self, at: datetime) -> None:
        """Renewal charges issued by an earlier day's sweep: paid the next day, unless the subscription lapses."""
        for action in getattr(self, "_after_sweep", []):
            action(at)
        self._after_sweep = []
        due = (
            Checkout.objects.filter(
                purpose=Checkout.Purpose.RENEWAL, status=Checkout.Status.PENDING,
                customer_email__endswith="@" + DEMO_DOMAIN, created_at__lte=at - timedelta(hours=12),
            )
            .exclude(subscription_id__in=self.lapsing)
            .order_by("pk")
        )
        for charge in due:
            transaction_id = self._opened(charge, at)
            activate_checkout(checkout=charge, paid_at=at + timedelta(hours=2), now=at + timedelta(hours=2), transaction_id=transaction_id)
