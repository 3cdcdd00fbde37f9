"""
A stateful property test of every money operation (docs/billing.md, the money machine): a hypothesis RuleBasedStateMachine
that drives the billing services and the webhook doors (real HTTP through Django's test client, the
fake JunglePay of tests/fakes/junglepay.py as the provider) through random sequences, and checks the
money invariants of contract §9 after every step.

How it is driven:

- The machine owns the clock (`self.now`): services get `now=`; code that reads the clock (the
  webhook door, the fake's answers) runs under one time_machine traveller moved with it.
- The provider's side and our side are apart, as in production: a rule changes a transaction at the
  fake JunglePay (paid, partially paid, refunded, in dispute, ...) and queues its postback; another
  rule delivers any queued postback, in any order, and another delivers an old one again. The door
  fetches the transaction, so what it applies is the provider's state at delivery.
- Each example runs inside a savepoint rolled back at teardown (the services use plain
  `transaction.atomic`, never `durable=True`, so they nest), and the fake forgets its transactions.

After every step, `check_money` asserts: the money audit (billing.audit.run_audit) finds nothing, and
every user's access (`user_has_access`) is what the audit's `expected_access` says. Until the audit
exists on this branch, the machine's own checks below stand in for it (they stay: they are cheap and
say in plain words what broke).
"""

from __future__ import annotations

import itertools
import json
import os
from dataclasses import dataclass, field
from datetime import timedelta

import time_machine
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.test import Client
from django.utils import timezone
from hypothesis import note
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, multiple, precondition, rule

from billing import services
from billing.access import user_has_access
from billing.audit import expected_access, run_audit
from billing.ledger_models import LedgerEntry
from billing.models import (
    Checkout,
    Coupon,
    PaymentGateway,
    Plan,
    ReconciliationItem,
    RefundRequest,
    Subscription,
    UnclaimedMarketplacePayment,
    WebhookEvent,
)
from billing.refunds import withdraw
from billing.webhooks import retry_failed_events
from config.errors import DomainError
from legal.services import delete_account
from tests.billing.money_machine_cards import CardOperations
from tests.billing.paymentkit import dias_body, post_webhook, transaction_postback
from tests.factories import GatewayFactory, OrderBumpFactory, PlanFactory, UserFactory

PASSWORD = "correct-horse-battery"  # tests.factories.UserFactory's
# Clock steps the machine takes: inside a PIX's day, past it, into grace, past grace, a period and more.
CLOCK_STEPS = [timedelta(minutes=40), timedelta(hours=5), timedelta(days=1, hours=1), timedelta(days=3), timedelta(days=8), timedelta(days=29), timedelta(days=31)]
COUPONS = ["HALF", "TENOFF", "FREE", "LOYAL", "ONCE", "WELCOME"]
CHECKOUT_KINDS = ["plain", "bumps", "trial", *(f"coupon:{code}" for code in COUPONS)]
# Provider statuses that take money back (refund, chargeback, a PIX dispute under way).
REVERSALS = ["refunded", "chargedback", "in_protest"]
# Problem codes (the audit's, the machine's own) `make fuzz-money` leaves out, to explore past failures already routed.
IGNORED = frozenset(code for code in os.environ.get("MONEY_FUZZ_IGNORE", "").split(",") if code)
# Expired first purchases a reminder e-mail went out for: the reminder's link may reopen them.
REOPENABLE = Q(status=Checkout.Status.EXPIRED, purpose=Checkout.Purpose.NEW, is_trial=False, total_cents__gt=0, recovery_reminders_sent__gt=0)


def valid_cpf(n: int) -> str:
    """A CPF with correct check digits, distinct for each n."""
    digits = [int(d) for d in f"{(n * 7919 + 123456) % 10**9:09d}"]
    if len(set(digits)) == 1:
        digits[0] = (digits[0] + 1) % 10
    for length in (9, 10):
        total = sum(d * (length + 1 - i) for i, d in enumerate(digits[:length]))
        digits.append((total * 10 % 11) % 10)
    return "".join(map(str, digits))


@dataclass
class Delivery:
    """One postback the provider sends: its own id, who sends it, and the body."""

    provider: str
    body: dict
    label: str


@dataclass
class World:
    """What the machine knows that the database does not: the provider's side and who was deleted."""

    queued: list[Delivery] = field(default_factory=list)
    delivered: list[Delivery] = field(default_factory=list)
    # transaction id -> (status, amount) the provider had when its last postback was delivered
    seen_by_site: dict[str, tuple[str, int]] = field(default_factory=dict)
    deleted_users: dict[int, str] = field(default_factory=dict)  # user pk -> e-mail before deletion
    # user pk -> the last Dias event and unclaimed payment stored before the deletion (later ones may name the e-mail)
    stored_before_deletion: dict[int, tuple[int, int]] = field(default_factory=dict)


@dataclass
class Shop:
    """What every example starts from: gateways, plans, an order bump, coupons, a staff member."""

    jp: PaymentGateway
    sandbox: PaymentGateway
    dias: PaymentGateway
    basic: Plan
    premium: Plan
    trial_plan: Plan
    bump: object
    staff: object

    def plan(self, name: str) -> Plan:
        return Plan.objects.get(pk=getattr(self, name).pk)


def open_shop(*, now) -> Shop:
    """Created once per test, outside the examples' savepoints (each example's changes roll back to it)."""
    shop = Shop(
        jp=GatewayFactory(kind=PaymentGateway.Kind.JUNGLEPAY, secret_key="sk_test_fuzz", is_active=True),
        sandbox=GatewayFactory(kind=PaymentGateway.Kind.SANDBOX, is_active=False),
        dias=GatewayFactory(kind=PaymentGateway.Kind.DIAS, is_active=True),
        basic=PlanFactory(name="Basic", price_cents=2990, duration_days=30, accepts_card=True),
        premium=PlanFactory(name="Premium", price_cents=5990, duration_days=30, accepts_card=True, max_installments=3),
        trial_plan=PlanFactory(name="Trial", price_cents=1990, duration_days=30, trial_days=7),
        bump=OrderBumpFactory(price_cents=990),
        staff=UserFactory(email="staff@example.com", is_staff=True),
    )
    # Valid from long before any example's clock (which starts at the real time, rounded).
    coupon = dict(starts_at=now - timedelta(days=30))
    services.create_coupon(code="HALF", kind=Coupon.Kind.PERCENT, value=50, **coupon)
    services.create_coupon(code="TENOFF", kind=Coupon.Kind.AMOUNT, value=1000, **coupon)
    services.create_coupon(code="FREE", kind=Coupon.Kind.PERCENT, value=100, **coupon)
    services.create_coupon(code="LOYAL", kind=Coupon.Kind.PERCENT, value=20, plan_ids=[shop.basic.pk], renewals=None, **coupon)
    services.create_coupon(code="ONCE", kind=Coupon.Kind.PERCENT, value=30, max_uses=1, **coupon)
    services.create_coupon(code="WELCOME", kind=Coupon.Kind.PERCENT, value=25, new_subscribers_only=True, **coupon)
    return shop


class MoneyMachine(CardOperations, RuleBasedStateMachine):
    """Every money operation, in any order, at any time; the money adds up after each."""

    # Set by the test before running: a started tests.fakes.junglepay.FakeJunglePay, and the shop.
    fake = None
    shop: Shop | None = None

    # Customers are a bundle. Checkouts and transactions are drawn by their current state (the
    # database's, the provider's): a bundle cannot be filtered by state without wasting steps, and
    # renewal and upgrade checkouts are made by the sweep and by plan changes, not by a rule.
    users = Bundle("users")

    MAX_USERS = 4
    MAX_SHOP_EDITS = 2  # plan edits and gateway switches per example: they matter, but rarely

    def __init__(self):
        super().__init__()
        self.fake.reset()
        cache.clear()  # the card throttles count per checkout and address: each example starts afresh
        self.now = timezone.now().replace(second=0, microsecond=0)
        self.traveller = time_machine.travel(self.now, tick=False)
        self.clock = self.traveller.start()
        self.atomic = transaction.atomic()
        self.atomic.__enter__()
        self.client = Client()
        self.world = World()
        self.ids = itertools.count(1)
        self.user_count = 0
        self.shop_edits = 0

    def teardown(self):
        transaction.set_rollback(True)
        self.atomic.__exit__(None, None, None)
        self.traveller.stop()

    # ------------------------------------------------------------------ helpers

    def _say(self, text: str) -> None:
        try:
            note(f"[{self.now:%m-%d %H:%M}] {text}")
        except InvalidArgument:
            pass  # a replayed sequence run as a plain test (no hypothesis run to note into)

    def _queue(self, provider: str, body: dict, label: str) -> None:
        self.world.queued.append(Delivery(provider=provider, body=body, label=label))

    def _deliver(self, delivery: Delivery):
        if delivery.provider == PaymentGateway.Kind.JUNGLEPAY:
            transaction_id = delivery.body["objectId"]
            current = self.fake.transactions.get(int(transaction_id), {})
            self.world.seen_by_site[transaction_id] = (current.get("status"), current.get("amount"))
            config = self.shop.jp
            path = "junglepay"
        elif delivery.provider == PaymentGateway.Kind.SANDBOX:
            config, path = self.shop.sandbox, "sandbox"
        else:
            config, path = self.shop.dias, "dias/payment-sucess"
        config.refresh_from_db()
        response = post_webhook(self.client, path, delivery.body, token=config.postback_token)
        self._say(f"deliver {delivery.label} → {response.status_code} {response.json()}")
        assert response.status_code == 200, response.content

    def _jp_transaction(self, transaction_id: str) -> dict:
        return self.fake.transactions[int(transaction_id)]

    # ------------------------------------------------------------------ customers and checkouts

    @initialize(target=users)
    def two_customers(self):
        return multiple(self.new_user(), self.new_user())

    @precondition(lambda self: self.user_count < self.MAX_USERS)
    @rule(target=users)
    def new_user(self):
        self.user_count += 1
        n = next(self.ids)
        user = UserFactory(email=f"fuzz{n}@example.com", name=f"Cliente {n}")
        user.fuzz_cpf = valid_cpf(n)
        self._say(f"new user {user.email}")
        return user

    @rule(
        user=users,
        plan=st.sampled_from(["basic", "premium", "trial_plan"]),
        kind=st.sampled_from(CHECKOUT_KINDS),
        other_identity=st.booleans(),
    )
    def new_checkout(self, user, plan, kind, other_identity):
        """A checkout as the API makes it: plain, with an order bump, with a coupon, or a free trial."""
        plan = self.shop.plan(plan)
        email, cpf = user.email, user.fuzz_cpf
        if other_identity:  # a logged-in buyer typing another e-mail and CPF
            n = next(self.ids)
            email, cpf = f"other{n}@example.com", valid_cpf(10_000 + n)
        self._say(f"new checkout {kind} of {plan.name} by {user.email} (as {email})")
        if user.pk in self.world.deleted_users:
            return
        try:
            checkout = services.create_checkout(
                plan=plan,
                customer_name=user.name,
                customer_email=email,
                customer_document=cpf,
                customer_phone="11987654321",
                order_bump_ids=[self.shop.bump.pk] if kind == "bumps" else [],
                user=user,
                coupon_code=kind.split(":", 1)[1] if kind.startswith("coupon:") else "",
                trial=kind == "trial",
                now=self.now,
            )
            checkout = services.settle_free_checkout(checkout=checkout, now=self.now)
        except DomainError as exc:
            self._say(f"  refused: {type(exc).__name__}: {exc}")
            return
        self._say(f"  → checkout {checkout.pk} total {checkout.total_cents} {checkout.status}")

    def _open_checkouts(self):
        return list(Checkout.objects.filter(status=Checkout.Status.PENDING, total_cents__gt=0).order_by("pk"))

    @precondition(lambda self: Checkout.objects.filter(status=Checkout.Status.PENDING, total_cents__gt=0).exists())
    @rule(data=st.data())
    def issue_pix(self, data):
        """/api/checkout/pix for any pending checkout (new, renewal, upgrade): the same charge, or a fresh one once expired."""
        checkout = data.draw(st.sampled_from(self._open_checkouts()), label="checkout")
        self.fake.pix_expiration_date = timezone.localdate(self.now + timedelta(days=1)).isoformat()
        try:
            checkout = services.issue_pix_charge(checkout_id=checkout.public_id, now=self.now)
        except DomainError as exc:
            self._say(f"issue pix for checkout {checkout.pk}: {type(exc).__name__}: {exc}")
            return
        self._say(
            f"issue pix for checkout {checkout.pk} ({checkout.purpose}, {checkout.total_cents}) → "
            f"{checkout.gateway.kind} {checkout.gateway_transaction_id}"
        )

    @precondition(lambda self: Checkout.objects.filter(REOPENABLE).exists())
    @rule(data=st.data())
    def reopen_reminded_checkout(self, data):
        """The link of a reminder e-mail reopens an expired checkout."""
        checkout = data.draw(st.sampled_from(list(Checkout.objects.filter(REOPENABLE).order_by("pk"))), label="checkout")
        try:
            services.reopen_checkout(checkout_id=checkout.public_id, now=self.now)
            self._say(f"reopen checkout {checkout.pk}: pending again")
        except DomainError as exc:
            self._say(f"reopen checkout {checkout.pk}: {type(exc).__name__}")

    # ------------------------------------------------------------------ the provider's side

    def _provider_transactions(self, *statuses) -> list[str]:
        return [str(pk) for pk, t in sorted(self.fake.transactions.items()) if t["status"] in statuses]

    def _draw_transaction(self, data, *statuses) -> str:
        return data.draw(st.sampled_from(self._provider_transactions(*statuses)), label="transaction")

    @precondition(lambda self: self._provider_transactions("waiting_payment", "partially_paid"))
    @rule(data=st.data(), how=st.sampled_from(["exact", "exact", "exact", "partial", "wrong_amount"]))
    def provider_pays(self, data, how):
        """The buyer pays a QR (on time or late: the clock decides), in part, or a different amount."""
        transaction_id = self._draw_transaction(data, "waiting_payment", "partially_paid")
        amount = self._jp_transaction(transaction_id)["amount"]
        if how == "partial":
            changes = {"status": "partially_paid", "paidAmount": max(1, amount // 2)}
        elif how == "wrong_amount":
            changes = {"status": "paid", "amount": amount + 100, "paidAt": self.now.isoformat()}
        else:
            changes = {"status": "paid", "paidAt": self.now.isoformat()}
        transaction_data = self.fake.set_status(transaction_id, **changes)
        self._say(f"provider: transaction {transaction_id} {how} → {transaction_data['status']}")
        self._queue_jp(transaction_data)

    @precondition(lambda self: self._provider_transactions("paid"))
    @rule(data=st.data(), status=st.sampled_from(REVERSALS))
    def provider_takes_money_back(self, data, status):
        """A refund, a chargeback, or a PIX dispute (MED) opened on a paid transaction."""
        transaction_id = self._draw_transaction(data, "paid")
        if status == "in_protest" and self._jp_transaction(transaction_id).get("paymentMethod") == "credit_card":
            status = "chargedback"  # a card has no PIX dispute (MED): its dispute is the chargeback
        self._say(f"provider: transaction {transaction_id} paid → {status}")
        self._queue_jp(self.fake.set_status(transaction_id, status))

    @precondition(lambda self: self._provider_transactions("in_protest"))
    @rule(data=st.data())
    def provider_decides_dispute_for_seller(self, data):
        """MED decided for us: in_protest → paid again."""
        transaction_id = self._draw_transaction(data, "in_protest")
        self._say(f"provider: transaction {transaction_id} in_protest → paid")
        self._queue_jp(self.fake.set_status(transaction_id, "paid"))

    @precondition(lambda self: self.fake.transactions)
    @rule(data=st.data())
    def provider_resends_current_status(self, data):
        """The provider's own retry: a new postback (new id) for a transaction's current status."""
        transaction_id = self._draw_transaction(data, *{t["status"] for t in self.fake.transactions.values()})
        self._queue_jp(self._jp_transaction(transaction_id))

    def _queue_jp(self, transaction_data: dict) -> None:
        body = transaction_postback(transaction_data, postback_id=700_000 + next(self.ids))
        self._queue(PaymentGateway.Kind.JUNGLEPAY, body, f"postback {body['id']} ({transaction_data['id']} {transaction_data['status']})")

    @precondition(lambda self: self.world.queued)
    @rule(data=st.data())
    def deliver_postback(self, data):
        """Any queued postback, in any order."""
        index = data.draw(st.integers(0, len(self.world.queued) - 1), label="queued postback")
        delivery = self.world.queued.pop(index)
        self._deliver(delivery)
        self.world.delivered.append(delivery)

    @precondition(lambda self: self.world.delivered)
    @rule(data=st.data())
    def redeliver_postback(self, data):
        """The provider sends a postback again (same id): stored once, applied once."""
        delivery = data.draw(st.sampled_from(self.world.delivered), label="delivered postback")
        self._deliver(delivery)

    @precondition(lambda self: WebhookEvent.objects.filter(outcome__in=[WebhookEvent.Outcome.FAILED, WebhookEvent.Outcome.RECEIVED]).exists())
    @rule()
    def retry_failed_webhooks(self):
        """The periodic retry of failed and stuck events."""
        self._say(f"retry failed webhooks: {retry_failed_events(now=self.now)}")

    @precondition(lambda self: Checkout.objects.filter(gateway__kind="sandbox", status=Checkout.Status.PENDING).exists())
    @rule(data=st.data())
    def sandbox_pays(self, data):
        """A charge issued while the sandbox was the active gateway, paid there."""
        pending = Checkout.objects.filter(gateway__kind="sandbox", status=Checkout.Status.PENDING).order_by("pk")
        checkout = data.draw(st.sampled_from(list(pending)), label="sandbox checkout")
        try:
            body = services.simulate_sandbox_event(checkout_id=checkout.public_id, outcome="paid")
        except DomainError as exc:
            self._say(f"sandbox pays checkout {checkout.pk}: {type(exc).__name__}")
            return
        self._say(f"sandbox: checkout {checkout.pk} paid")
        self._queue(PaymentGateway.Kind.SANDBOX, json.loads(body), f"sandbox postback of checkout {checkout.pk}")

    @rule(
        user=users,
        status=st.sampled_from(["PENDING", "PAID"]),
        amount=st.sampled_from([2990, 5990, 1234]),
        reuse=st.booleans(),
    )
    def dias_postback(self, user, status, amount, reuse):
        """Dias Marketplace: PENDING then PAID (or PAID alone), an amount matching a plan or none."""
        external_id = f"DM-{user.pk}-{1 if reuse else next(self.ids)}"
        email = self.world.deleted_users.get(user.pk, user.email)
        self._queue(
            PaymentGateway.Kind.DIAS,
            dias_body(external_id=external_id, status=status, amount_cents=amount, email=email, name=user.name, now=self.now),
            f"dias {status} {external_id} {amount}",
        )

    # ------------------------------------------------------------------ the customer's and the admin's operations

    def _draw_subscription(self, data, queryset) -> Subscription:
        return data.draw(st.sampled_from(list(queryset.select_related("user").order_by("pk"))), label="subscription")

    @precondition(lambda self: Subscription.objects.live().exists())
    @rule(data=st.data(), plan=st.sampled_from(["basic", "premium", "trial_plan"]))
    def change_plan(self, data, plan):
        """Upgrade (a prorated charge) or downgrade (at renewal)."""
        subscription = self._draw_subscription(data, Subscription.objects.live())
        try:
            change = services.change_plan(subscription=subscription, plan=self.shop.plan(plan), now=self.now)
        except DomainError as exc:
            self._say(f"change plan of subscription {subscription.pk} to {plan}: {type(exc).__name__}")
            return
        total = change.checkout.total_cents if change.checkout else None
        self._say(f"change plan of subscription {subscription.pk} to {plan}: {change.kind} (checkout total {total})")

    @precondition(lambda self: Subscription.objects.live().filter(cancel_at_period_end=False).exists())
    @rule(data=st.data())
    def cancel_at_period_end(self, data):
        subscription = self._draw_subscription(data, Subscription.objects.live().filter(cancel_at_period_end=False))
        services.cancel_subscription(subscription=subscription, now=self.now)
        self._say(f"subscription {subscription.pk} canceled at period end")

    @precondition(lambda self: Subscription.objects.exists())
    @rule(data=st.data(), action=st.sampled_from(["cancel_now", "expire", "extend", "activate"]), days=st.sampled_from([1, 7, 30]))
    def admin_action(self, data, action, days):
        """The admin's subscription actions: cancel now, expire, extend N days, activate."""
        subscription = self._draw_subscription(data, Subscription.objects.all())
        admin = dict(subscription=subscription, actor=self.shop.staff, reason=f"fuzz: admin {action}", now=self.now)
        try:
            if action == "cancel_now":
                services.cancel_subscription_now(**admin)
            elif action == "expire":
                services.expire_subscription(**admin)
            elif action == "extend":
                services.extend_subscription(days=days, **admin)
            else:
                services.activate_subscription(**admin)
        except DomainError as exc:
            self._say(f"admin {action} subscription {subscription.pk}: {type(exc).__name__}")
            return
        self._say(f"admin {action} subscription {subscription.pk}" + (f" ({days} days)" if action == "extend" else ""))

    @precondition(lambda self: Subscription.objects.live().exists())
    @rule(data=st.data())
    def withdraw(self, data):
        """The buyer withdraws within the window: access ends, refunds asked (JunglePay: staff refunds)."""
        subscription = self._draw_subscription(data, Subscription.objects.live())
        try:
            result = withdraw(subscription=subscription, now=self.now)
        except DomainError as exc:
            self._say(f"subscription {subscription.pk} withdrawal: {type(exc).__name__}: {exc}")
            return
        self._say(f"subscription {subscription.pk} withdrawn: {result.status} {result.amount_cents}")

    @precondition(lambda self: RefundRequest.objects.filter(status=RefundRequest.Status.PENDING).exists())
    @rule(data=st.data())
    def staff_completes_refund(self, data):
        """Staff refunded by hand at the provider and mark the request done."""
        request = data.draw(
            st.sampled_from(list(RefundRequest.objects.filter(status=RefundRequest.Status.PENDING).order_by("pk"))),
            label="refund request",
        )
        checkout = request.checkout
        if checkout.paid_transaction_id.isdigit() and int(checkout.paid_transaction_id) in self.fake.transactions:
            self.fake.set_status(checkout.paid_transaction_id, "refunded")  # the refund staff made at the provider
        try:
            services.complete_refund_request(refund_request=request, now=self.now)
        except DomainError as exc:
            self._say(f"staff completes refund request {request.pk}: {type(exc).__name__}: {exc}")
            return
        self._say(f"staff completes refund request {request.pk} (checkout {checkout.pk})")

    @precondition(lambda self: not self.world.deleted_users)
    @rule(user=users)
    def delete_account(self, user):
        email = user.email
        user.refresh_from_db()
        delete_account(user=user, password=PASSWORD, now=self.now)
        self.world.deleted_users[user.pk] = email
        self.world.stored_before_deletion[user.pk] = (
            WebhookEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0,
            UnclaimedMarketplacePayment.objects.order_by("-pk").values_list("pk", flat=True).first() or 0,
        )
        self._say(f"{email} deletes the account")

    # ------------------------------------------------------------------ the shop's settings

    @precondition(lambda self: self.shop_edits < self.MAX_SHOP_EDITS)
    @rule(plan=st.sampled_from(["basic", "premium", "trial_plan"]), price=st.sampled_from([990, 2990, 4990, 7990]), days=st.sampled_from([7, 30, 90]))
    def edit_plan(self, plan, price, days):
        """The admin reprices a plan or changes its duration (sold checkouts keep their snapshot)."""
        self.shop_edits += 1
        plan = self.shop.plan(plan)
        plan.price_cents, plan.duration_days = price, days
        plan.save()
        self._say(f"admin edits plan {plan.name}: {price} cents, {days} days")

    @precondition(lambda self: self.shop_edits < self.MAX_SHOP_EDITS)
    @rule()
    def switch_gateway(self):
        """The admin makes the other internal gateway (JunglePay ↔ sandbox) the active one."""
        self.shop_edits += 1
        active = PaymentGateway.objects.get(is_active=True, kind__in=PaymentGateway.INTERNAL_KINDS)
        gateway = self.shop.sandbox if active.pk == self.shop.jp.pk else self.shop.jp
        services.activate_gateway(gateway=gateway)
        self._say(f"admin activates the {gateway.kind} gateway")

    # ------------------------------------------------------------------ time

    @rule(step=st.sampled_from(CLOCK_STEPS))
    def advance_clock(self, step):
        self.now += step
        self.clock.move_to(self.now)
        self._say(f"clock +{step}")

    @rule()
    def sweep(self):
        result = services.sweep_subscriptions(now=self.now)
        self._say(f"sweep: {result.summary()}")

    # ------------------------------------------------------------------ the invariants

    @invariant()
    def money_adds_up(self):
        check_money(self)


def check_money(machine: MoneyMachine) -> None:
    """
    Contract §9 after every step: the audit finds nothing, every user's access is what the audit's
    coverage says, and the checks only the machine can make, knowing the provider's side and who
    deleted their account. Every problem found is reported at once, each with its code; codes in
    MONEY_FUZZ_IGNORE are left out (`make fuzz-money` only: to explore past a failure already routed).
    """
    now = machine.now
    problems: list[tuple[str, str]] = []
    problems += [(v.code, f"§9.{v.invariant} {v.message} {v.rows}") for v in run_audit(now=now).violations]
    for user in get_user_model().objects.filter(Q(email__startswith="fuzz") | Q(pk__in=list(machine.world.deleted_users))).order_by("pk"):
        has = user_has_access(user, now=now)
        if has != expected_access(user, now=now):
            problems.append(("access_mismatch", f"user {user.pk} has access: {has}; the ledger's coverage says {not has}"))
        if has and user.pk in machine.world.deleted_users:
            problems.append(("deleted_account_access", f"deleted account {user.pk} has access"))
    problems += payments_unaccounted(machine) + refunds_of_another_payment(machine) + money_back_misnamed(machine)
    problems += deleted_accounts_kept(machine)
    problems = [(code, message) for code, message in problems if code not in IGNORED]
    assert not problems, "money invariants broken:\n" + "\n".join(f"  {code}: {message}" for code, message in problems)


def payments_unaccounted(machine: MoneyMachine) -> list[tuple[str, str]]:
    """§9.1 from the provider's side: a paid transaction the site was told of paid a checkout or is listed for a person."""
    found = []
    for transaction_id, (status, amount) in machine.world.seen_by_site.items():
        if status != "paid":
            continue
        checkout = Checkout.objects.filter(Q(gateway_transaction_id=transaction_id) | Q(previous_charges__transaction_id=transaction_id)).first()
        if checkout is None or amount != checkout.total_cents:
            continue  # a wrong amount stays a FAILED event for a person (the audit judges it)
        paid_it = Checkout.objects.filter(
            paid_transaction_id=transaction_id, status__in=[Checkout.Status.PAID, Checkout.Status.REFUNDED]
        ).exists()
        listed = ReconciliationItem.objects.filter(transaction_id=transaction_id).exclude(kind=ReconciliationItem.Kind.PARTIAL_PAYMENT).exists()
        if not (paid_it or listed):
            found.append(("payment_unaccounted", f"transaction {transaction_id} was paid and its postback delivered, yet it paid no checkout and is listed nowhere"))
    return found


def refunds_of_another_payment(machine: MoneyMachine) -> list[tuple[str, str]]:
    """§9.5 from the provider's side: a refunded checkout's own paying transaction was refunded (or charged back, or disputed)."""
    found = []
    refunded = Checkout.objects.filter(status=Checkout.Status.REFUNDED, gateway__kind="junglepay").exclude(paid_transaction_id="")
    for checkout in refunded:
        transaction_data = machine.fake.transactions.get(int(checkout.paid_transaction_id))
        if transaction_data is not None and transaction_data["status"] not in REVERSALS:
            found.append((
                "refund_of_another_payment",
                f"checkout {checkout.pk} is refunded, but the transaction that paid it ({checkout.paid_transaction_id}) "
                f"is {transaction_data['status']!r} at the provider",
            ))
    return found


def money_back_misnamed(machine: MoneyMachine) -> list[tuple[str, str]]:
    """
    The ledger names how the money went back as the provider said it: the latest refund or
    chargeback entry of a refunded checkout is a chargeback when the transaction that paid it was
    charged back or disputed (MED), a refund when it was refunded (what the operator's
    `payment.chargedback` / `payment.refunded` and the finance figures read).
    """
    found = []
    refunded = Checkout.objects.filter(status=Checkout.Status.REFUNDED, gateway__kind="junglepay").exclude(paid_transaction_id="")
    for checkout in refunded:
        status = (machine.fake.transactions.get(int(checkout.paid_transaction_id)) or {}).get("status")
        if status not in REVERSALS or machine.world.seen_by_site.get(checkout.paid_transaction_id, (None,))[0] != status:
            continue  # not taken back at the provider, or the site has not been told yet
        latest = (
            LedgerEntry.objects.filter(checkout=checkout, kind__in=[LedgerEntry.Kind.REFUND, LedgerEntry.Kind.CHARGEBACK])
            .order_by("-pk").values_list("kind", flat=True).first()
        )
        expected = LedgerEntry.Kind.REFUND if status == "refunded" else LedgerEntry.Kind.CHARGEBACK
        if latest != expected:
            found.append(("money_back_misnamed", f"checkout {checkout.pk}: the provider says {status!r}, the ledger's entry is {latest!r}"))
    return found


def deleted_accounts_kept(machine: MoneyMachine) -> list[tuple[str, str]]:
    """
    LGPD: a deleted account's e-mail is left in no marketplace record stored before
    the deletion (a marketplace payment made with that e-mail afterwards is a new buyer's, and kept),
    and its saved card (the gateway's card id) is forgotten.
    """
    found = []
    kept_cards = Subscription.objects.filter(user_id__in=list(machine.world.deleted_users)).exclude(card_id="")
    found += [("deleted_card_kept", f"subscription {pk} of a deleted account keeps its saved card") for pk in kept_cards.values_list("pk", flat=True)]
    for user_pk, email in machine.world.deleted_users.items():
        last_event, last_unclaimed = machine.world.stored_before_deletion[user_pk]
        if UnclaimedMarketplacePayment.objects.filter(email__iexact=email, pk__lte=last_unclaimed).exists():
            found.append(("deleted_email_kept", f"{email} kept in an unclaimed marketplace payment"))
        dias = WebhookEvent.objects.filter(provider="dias", pk__lte=last_event)
        stored = [event.pk for event in dias if email in (event.body or "")]
        if stored:
            found.append(("deleted_email_kept", f"{email} kept in stored Dias postbacks {stored}"))
    return found
