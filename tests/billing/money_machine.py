"""
A stateful property test of every money operation (issue 20 §2): a hypothesis RuleBasedStateMachine
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
from dataclasses import dataclass, field
from datetime import timedelta

import time_machine
from django.db import transaction
from django.db.models import Q
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone
from hypothesis import note
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, multiple, precondition, rule

from accounts.access import user_has_access
from billing import services
from billing.webhooks import retry_failed_events
from config.errors import DomainError
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
from legal.services import delete_account
from tests.billing.paymentkit import dias_body, post_webhook, transaction_postback
from tests.factories import GatewayFactory, OrderBumpFactory, PlanFactory, UserFactory

try:  # the audit of issue 20 §1 (branch money-audit); the machine's own checks stand in until it lands
    from billing.audit import expected_access, run_audit
except ImportError:  # pragma: no cover - depends on what is merged
    expected_access = run_audit = None

PASSWORD = "correct-horse-battery"  # tests.factories.UserFactory's
# Clock steps the machine takes: inside a PIX's day, past it, into grace, past grace, a period and more.
CLOCK_STEPS = [timedelta(minutes=40), timedelta(hours=5), timedelta(days=1, hours=1), timedelta(days=3), timedelta(days=8), timedelta(days=29), timedelta(days=31)]
COUPONS = ["HALF", "TENOFF", "FREE", "LOYAL", "ONCE", "WELCOME"]
CHECKOUT_KINDS = ["plain", "bumps", "trial", *(f"coupon:{code}" for code in COUPONS)]
# Provider statuses that take money back (refund, chargeback, a PIX dispute under way).
REVERSALS = ["refunded", "chargedback", "in_protest"]


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
    withdrawn_at: dict[int, object] = field(default_factory=dict)  # subscription pk -> when withdrawn


class MoneyMachine(RuleBasedStateMachine):
    """Every money operation, in any order, at any time; the money adds up after each."""

    fake = None  # a started tests.fakes.junglepay.FakeJunglePay, set by the test before running

    users = Bundle("users")
    checkouts = Bundle("checkouts")
    transactions = Bundle("transactions")

    def __init__(self):
        super().__init__()
        self.fake.reset()
        self.now = timezone.now().replace(second=0, microsecond=0)
        self.traveller = time_machine.travel(self.now, tick=False)
        self.clock = self.traveller.start()
        self.atomic = transaction.atomic()
        self.atomic.__enter__()
        self.client = Client()
        self.world = World()
        self.ids = itertools.count(1)
        self._set_up_shop()

    def teardown(self):
        transaction.set_rollback(True)
        self.atomic.__exit__(None, None, None)
        self.traveller.stop()

    def _set_up_shop(self):
        self.jp = GatewayFactory(kind=PaymentGateway.Kind.JUNGLEPAY, secret_key="sk_test_fuzz", is_active=True)
        self.sandbox = GatewayFactory(kind=PaymentGateway.Kind.SANDBOX, is_active=False)
        self.dias = GatewayFactory(kind=PaymentGateway.Kind.DIAS, is_active=True)
        self.basic = PlanFactory(name="Basic", price_cents=2990, duration_days=30)
        self.premium = PlanFactory(name="Premium", price_cents=5990, duration_days=30)
        self.trial_plan = PlanFactory(name="Trial", price_cents=1990, duration_days=30, trial_days=7)
        self.plans = [self.basic, self.premium, self.trial_plan]
        self.bump = OrderBumpFactory(price_cents=990)
        start = self.now - timedelta(days=1)
        coupon = dict(starts_at=start)
        services.create_coupon(code="HALF", kind=Coupon.Kind.PERCENT, value=50, **coupon)
        services.create_coupon(code="TENOFF", kind=Coupon.Kind.AMOUNT, value=1000, **coupon)
        services.create_coupon(code="FREE", kind=Coupon.Kind.PERCENT, value=100, **coupon)
        services.create_coupon(code="LOYAL", kind=Coupon.Kind.PERCENT, value=20, plan_ids=[self.basic.pk], renewals=None, **coupon)
        services.create_coupon(code="ONCE", kind=Coupon.Kind.PERCENT, value=30, max_uses=1, **coupon)
        services.create_coupon(code="WELCOME", kind=Coupon.Kind.PERCENT, value=25, new_subscribers_only=True, **coupon)

    # ------------------------------------------------------------------ helpers

    def _say(self, text: str) -> None:
        note(f"[{self.now:%m-%d %H:%M}] {text}")

    def _queue(self, provider: str, body: dict, label: str) -> None:
        self.world.queued.append(Delivery(provider=provider, body=body, label=label))

    def _deliver(self, delivery: Delivery):
        if delivery.provider == PaymentGateway.Kind.JUNGLEPAY:
            transaction_id = delivery.body["objectId"]
            current = self.fake.transactions.get(int(transaction_id), {})
            self.world.seen_by_site[transaction_id] = (current.get("status"), current.get("amount"))
            config = self.jp
            path = "junglepay"
        elif delivery.provider == PaymentGateway.Kind.SANDBOX:
            config, path = self.sandbox, "sandbox"
        else:
            config, path = self.dias, "dias/payment-sucess"
        config.refresh_from_db()
        response = post_webhook(self.client, path, delivery.body, token=config.postback_token)
        self._say(f"deliver {delivery.label} → {response.status_code} {response.json()}")
        assert response.status_code == 200, response.content

    def _jp_transaction(self, transaction_id: str) -> dict:
        return self.fake.transactions[int(transaction_id)]

    # ------------------------------------------------------------------ customers and checkouts

    @rule(target=users)
    def new_user(self):
        n = next(self.ids)
        user = UserFactory(email=f"fuzz{n}@example.com", name=f"Cliente {n}")
        user.fuzz_cpf = valid_cpf(n)
        self._say(f"new user {user.email}")
        return user

    @rule(
        target=checkouts,
        user=users,
        plan=st.sampled_from(["basic", "premium", "trial_plan"]),
        kind=st.sampled_from(CHECKOUT_KINDS),
        other_identity=st.booleans(),
    )
    def new_checkout(self, user, plan, kind, other_identity):
        """A checkout as the API makes it: plain, with an order bump, with a coupon, or a free trial."""
        plan = getattr(self, plan)
        email, cpf = user.email, user.fuzz_cpf
        if other_identity:  # a logged-in buyer typing another e-mail and CPF
            n = next(self.ids)
            email, cpf = f"other{n}@example.com", valid_cpf(10_000 + n)
        self._say(f"new checkout {kind} of {plan.name} by {user.email} (as {email})")
        if user.pk in self.world.deleted_users:
            return multiple()
        try:
            checkout = services.create_checkout(
                plan=plan,
                customer_name=user.name,
                customer_email=email,
                customer_document=cpf,
                customer_phone="11987654321",
                order_bump_ids=[self.bump.pk] if kind == "bumps" else [],
                user=user,
                coupon_code=kind.split(":", 1)[1] if kind.startswith("coupon:") else "",
                trial=kind == "trial",
                now=self.now,
            )
            checkout = services.settle_free_checkout(checkout=checkout, now=self.now)
        except DomainError as exc:
            self._say(f"  refused: {type(exc).__name__}: {exc}")
            return multiple()
        self._say(f"  → checkout {checkout.pk} total {checkout.total_cents} {checkout.status}")
        return checkout

    def _open_checkouts(self):
        return list(Checkout.objects.filter(status=Checkout.Status.PENDING, total_cents__gt=0).order_by("pk"))

    @precondition(lambda self: Checkout.objects.filter(status=Checkout.Status.PENDING, total_cents__gt=0).exists())
    @rule(target=transactions, data=st.data())
    def issue_pix(self, data):
        """/api/checkout/pix for any pending checkout (new, renewal, upgrade): the same charge, or a fresh one once expired."""
        checkout = data.draw(st.sampled_from(self._open_checkouts()), label="checkout")
        before = checkout.gateway_transaction_id
        active = PaymentGateway.objects.get(is_active=True, kind__in=PaymentGateway.INTERNAL_KINDS)
        if active.kind == PaymentGateway.Kind.JUNGLEPAY:
            self.fake.pix_expiration_date = timezone.localdate(self.now + timedelta(days=1)).isoformat()
        try:
            checkout = services.issue_pix_charge(checkout_id=checkout.public_id, now=self.now)
        except (DomainError) as exc:
            self._say(f"issue pix for checkout {checkout.pk}: {type(exc).__name__}: {exc}")
            return multiple()
        self._say(f"issue pix for checkout {checkout.pk} ({checkout.purpose}) → {checkout.gateway.kind} {checkout.gateway_transaction_id}")
        if checkout.gateway_transaction_id == before or checkout.gateway.kind != PaymentGateway.Kind.JUNGLEPAY:
            return multiple()
        return checkout.gateway_transaction_id

    @rule(checkout=checkouts)
    def reopen_reminded_checkout(self, checkout):
        """The link of a reminder e-mail reopens an expired checkout."""
        try:
            services.reopen_checkout(checkout_id=checkout.public_id, now=self.now)
            self._say(f"reopen checkout {checkout.pk}: pending again")
        except DomainError as exc:
            self._say(f"reopen checkout {checkout.pk}: {type(exc).__name__}")

    # ------------------------------------------------------------------ the provider's side

    @rule(transaction_id=transactions, how=st.sampled_from(["exact", "exact", "exact", "partial", "wrong_amount"]))
    def provider_pays(self, transaction_id, how):
        """The buyer pays a QR (on time or late: the clock decides), in part, or a different amount."""
        current = self._jp_transaction(transaction_id)
        if current["status"] not in ("waiting_payment", "partially_paid"):
            return
        amount = current["amount"]
        if how == "partial":
            changes = {"status": "partially_paid", "paidAmount": max(1, amount // 2)}
        elif how == "wrong_amount":
            changes = {"status": "paid", "amount": amount + 100, "paidAt": self.now.isoformat()}
        else:
            changes = {"status": "paid", "paidAt": self.now.isoformat()}
        transaction_data = self.fake.set_status(transaction_id, **changes)
        self._say(f"provider: transaction {transaction_id} {how} → {transaction_data['status']}")
        self._queue_jp(transaction_data)

    @rule(transaction_id=transactions, status=st.sampled_from(REVERSALS))
    def provider_takes_money_back(self, transaction_id, status):
        """A refund, a chargeback, or a PIX dispute (MED) opened on a paid transaction."""
        current = self._jp_transaction(transaction_id)
        if current["status"] != "paid":
            return
        self._say(f"provider: transaction {transaction_id} paid → {status}")
        self._queue_jp(self.fake.set_status(transaction_id, status))

    @rule(transaction_id=transactions)
    def provider_decides_dispute_for_seller(self, transaction_id):
        """MED decided for us: in_protest → paid again."""
        if self._jp_transaction(transaction_id)["status"] != "in_protest":
            return
        self._say(f"provider: transaction {transaction_id} in_protest → paid")
        self._queue_jp(self.fake.set_status(transaction_id, "paid"))

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

    @rule()
    def retry_failed_webhooks(self):
        """The periodic retry of failed and stuck events."""
        counts = retry_failed_events(now=self.now)
        self._say(f"retry failed webhooks: {counts}")

    @precondition(lambda self: Checkout.objects.filter(gateway__kind="sandbox", status=Checkout.Status.PENDING).exists())
    @rule(data=st.data())
    def sandbox_pays(self, data):
        """A charge issued while the sandbox was the active gateway, paid there."""
        checkout = data.draw(
            st.sampled_from(list(Checkout.objects.filter(gateway__kind="sandbox", status=Checkout.Status.PENDING).order_by("pk"))),
            label="sandbox checkout",
        )
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

    def _live(self, user):
        return Subscription.objects.live().filter(user=user).first()

    @rule(user=users, plan=st.sampled_from(["basic", "premium", "trial_plan"]))
    def change_plan(self, user, plan):
        """Upgrade (a prorated charge) or downgrade (at renewal)."""
        subscription = self._live(user)
        if subscription is None:
            return
        try:
            change = services.change_plan(subscription=subscription, plan=getattr(self, plan), now=self.now)
        except DomainError as exc:
            self._say(f"change plan of {user.email} to {plan}: {type(exc).__name__}")
            return
        total = change.checkout.total_cents if change.checkout else None
        self._say(f"change plan of {user.email} to {plan}: {change.kind} (checkout total {total})")

    @rule(user=users)
    def cancel_at_period_end(self, user):
        subscription = self._live(user)
        if subscription is not None:
            services.cancel_subscription(subscription=subscription, now=self.now)
            self._say(f"{user.email} cancels at period end")

    @rule(user=users, action=st.sampled_from(["cancel_now", "expire", "extend", "activate"]), days=st.sampled_from([1, 7, 30]))
    def admin_action(self, user, action, days):
        """The admin's subscription actions: cancel now, expire, extend N days, activate."""
        subscription = Subscription.objects.filter(user=user).order_by("-pk").first()
        if subscription is None:
            return
        try:
            if action == "cancel_now":
                services.cancel_subscription_now(subscription=subscription, reason="fuzz", now=self.now)
            elif action == "expire":
                services.expire_subscription(subscription=subscription, now=self.now)
            elif action == "extend":
                services.extend_subscription(subscription=subscription, days=days, now=self.now)
            else:
                services.activate_subscription(subscription=subscription, now=self.now)
        except DomainError as exc:
            self._say(f"admin {action} subscription {subscription.pk}: {type(exc).__name__}")
            return
        self._say(f"admin {action} subscription {subscription.pk} of {user.email}" + (f" ({days} days)" if action == "extend" else ""))

    @rule(user=users)
    def withdraw(self, user):
        """The buyer withdraws within the window: access ends, refunds asked (JunglePay: staff refunds)."""
        subscription = self._live(user)
        if subscription is None:
            return
        try:
            result = withdraw(subscription=subscription, now=self.now)
        except DomainError as exc:
            self._say(f"{user.email} withdraws: {type(exc).__name__}: {exc}")
            return
        self.world.withdrawn_at.setdefault(subscription.pk, self.now)
        self._say(f"{user.email} withdraws subscription {subscription.pk}: {result.status} {result.amount_cents}")

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

    @rule(user=users)
    def delete_account(self, user):
        if user.pk in self.world.deleted_users:
            return
        email = user.email
        user.refresh_from_db()
        delete_account(user=user, password=PASSWORD, now=self.now)
        self.world.deleted_users[user.pk] = email
        self._say(f"{email} deletes the account")

    # ------------------------------------------------------------------ the shop's settings

    @rule(plan=st.sampled_from(["basic", "premium", "trial_plan"]), price=st.sampled_from([990, 2990, 4990, 7990]), days=st.sampled_from([7, 30, 90]))
    def edit_plan(self, plan, price, days):
        """The admin reprices a plan or changes its duration (sold checkouts keep their snapshot)."""
        plan = Plan.objects.get(pk=getattr(self, plan).pk)
        plan.price_cents, plan.duration_days = price, days
        plan.save()
        self._say(f"admin edits plan {plan.name}: {price} cents, {days} days")

    @rule(kind=st.sampled_from(["junglepay", "sandbox"]))
    def switch_gateway(self, kind):
        gateway = self.jp if kind == "junglepay" else self.sandbox
        services.activate_gateway(gateway=gateway)
        self._say(f"admin activates the {kind} gateway")

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
    """Contract §9 after every step: the audit, access, and the machine's own direct checks."""
    now = machine.now
    if run_audit is not None:
        report = run_audit(now=now)
        assert not report.violations, "audit violations:\n" + "\n".join(
            f"{v.invariant} {v.code}: {v.message} {v.rows}" for v in report.violations
        )
    users = list(get_user_model().objects.filter(email__startswith="fuzz").order_by("pk")) + list(
        get_user_model().objects.filter(pk__in=list(machine.world.deleted_users)).order_by("pk")
    )
    for user in users:
        has = user_has_access(user, now=now)
        if expected_access is not None:
            assert has == expected_access(user, now=now), f"access of {user.email} is {has}, the audit expects {not has}"
        if user.pk in machine.world.deleted_users:
            assert not has, f"deleted account {user.pk} has access"
        elif has:
            assert_access_is_paid_for(user, now=now)
    assert_every_payment_accounted_once(machine)
    assert_refunds_revoke_only_their_own(machine)
    assert_coupons_within_their_rules()
    assert_credits_from_money_paid()
    assert_nothing_reaches_deleted_accounts(machine)


def assert_access_is_paid_for(user, *, now) -> None:
    """No unpaid day given (§9.4): a subscription granting access has a paid, unrefunded checkout, a trial, an admin grant or a marketplace payment."""
    subscription = Subscription.objects.granting_access(now).filter(user=user).first()
    assert subscription is not None
    paid = Checkout.objects.filter(subscription=subscription, status=Checkout.Status.PAID).exists()
    admin = subscription.plan_match_rule == Subscription.PlanMatch.ADMIN or subscription.last_reason == Subscription.Reason.EXTENDED_BY_ADMIN
    marketplace = bool(subscription.external_id) or Subscription.objects.filter(user=user).exclude(external_id="").exists()
    assert paid or admin or marketplace, (
        f"{user.email} has access through subscription {subscription.pk} ({subscription.status}, "
        f"{subscription.last_reason}) with no paid checkout, trial, admin grant or marketplace payment"
    )


def assert_every_payment_accounted_once(machine: MoneyMachine) -> None:
    """§9.1: a paid transaction the site has seen (right amount) paid one checkout or is listed for a person."""
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
        assert paid_it or listed, f"transaction {transaction_id} was paid and seen, yet paid no checkout and is listed nowhere"


def assert_refunds_revoke_only_their_own(machine: MoneyMachine) -> None:
    """§9.5: a refunded checkout's own paying transaction was refunded (or charged back, or staff refunded it)."""
    for checkout in Checkout.objects.filter(status=Checkout.Status.REFUNDED, gateway__kind="junglepay").exclude(paid_transaction_id=""):
        if int(checkout.paid_transaction_id) not in machine.fake.transactions:
            continue
        status = machine.fake.transactions[int(checkout.paid_transaction_id)]["status"]
        by_staff = RefundRequest.objects.filter(checkout=checkout, closed_by=RefundRequest.ClosedBy.ADMIN).exists()
        assert status in REVERSALS or by_staff, (
            f"checkout {checkout.pk} is refunded, but the transaction that paid it ({checkout.paid_transaction_id}) is {status!r} at the provider"
        )


def assert_coupons_within_their_rules() -> None:
    """§9.6: a coupon used at most its maximum; a plan-limited one discounts only its plans; new-only only first buys."""
    for coupon in Coupon.objects.all():
        paid = Checkout.objects.filter(coupon=coupon, status__in=[Checkout.Status.PAID, Checkout.Status.REFUNDED])
        if coupon.max_uses is not None:
            assert paid.count() <= coupon.max_uses, f"coupon {coupon.code} paid {paid.count()} times, max {coupon.max_uses}"
        plans = set(coupon.plans.values_list("pk", flat=True))
        if plans:
            wrong = Checkout.objects.filter(discount_cents__gt=0).filter(
                Q(coupon=coupon) | Q(subscription__coupon=coupon, purpose=Checkout.Purpose.RENEWAL)
            ).exclude(plan_id__in=plans)
            assert not wrong.exists(), f"coupon {coupon.code} discounted checkouts {list(wrong.values_list('pk', flat=True))} of a plan it does not name"
        if coupon.new_subscribers_only:
            for checkout in paid.filter(purpose=Checkout.Purpose.NEW):
                earlier = Checkout.objects.filter(
                    status__in=[Checkout.Status.PAID, Checkout.Status.REFUNDED], paid_at__lt=checkout.paid_at, total_cents__gt=0
                ).filter(Q(user_id=checkout.user_id) | Q(customer_email__iexact=checkout.customer_email))
                assert not earlier.exists(), f"new-subscribers-only coupon {coupon.code} sold to a buyer who paid before (checkout {checkout.pk})"


def assert_credits_from_money_paid() -> None:
    """§9.6: an upgrade's credit never exceeds the money actually paid on the plan line of its subscription."""
    for upgrade in Checkout.objects.filter(purpose=Checkout.Purpose.UPGRADE, credit_cents__gt=0):
        paid = Checkout.objects.filter(
            subscription_id=upgrade.subscription_id, status=Checkout.Status.PAID, paid_at__lte=upgrade.created_at
        ).exclude(pk=upgrade.pk)
        money = sum(c.total_cents - c.bumps_cents for c in paid)
        assert upgrade.credit_cents <= money, (
            f"upgrade checkout {upgrade.pk} credits {upgrade.credit_cents} cents; its subscription's paid plan lines add to {money}"
        )


def assert_nothing_reaches_deleted_accounts(machine: MoneyMachine) -> None:
    """§9.8 and LGPD: no live subscription for a deleted account; its e-mail left in no marketplace record."""
    for user_pk, email in machine.world.deleted_users.items():
        live = Subscription.objects.live().filter(user_id=user_pk)
        assert not live.exists(), f"deleted account {user_pk} has live subscription {live.first().pk}"
        assert not UnclaimedMarketplacePayment.objects.filter(Q(email__iexact=email)).exists(), f"{email} kept in a marketplace payment"
        bodies = WebhookEvent.objects.filter(provider="dias")
        assert not any(email in (event.body or "") for event in bodies), f"{email} kept in a stored Dias postback"
