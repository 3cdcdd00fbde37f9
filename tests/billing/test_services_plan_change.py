from datetime import timedelta

import pytest
from django.utils import timezone

from billing.audit import run_audit
from billing.models import Checkout, Coupon, Subscription
from billing.services import (
    activate_checkout,
    activate_subscription,
    change_plan,
    create_checkout,
    create_coupon,
    extend_subscription,
    settle_free_checkout,
    sweep_subscriptions,
    upgrade_credit_cents,
)
from config.errors import DomainError
from tests.factories import CheckoutFactory, PlanFactory, SubscriptionFactory, UserFactory

pytestmark = pytest.mark.django_db
NOW = timezone.now().replace(microsecond=0)


def test_upgrade_proration_worked_example(monthly, quarterly):
    # given: R$ 29,90 for 30 days, 10 days used
    sub = SubscriptionFactory(plan=monthly, start_date=NOW - timedelta(days=10), end_date=NOW + timedelta(days=20))

    # when: upgrading to R$ 79,90 / 90 days
    change = change_plan(subscription=sub, plan=quarterly, now=NOW)

    # then: unused = 2990 × 20/30 = 1993,33… → 1993; charge = 7990 − 1993 = 5997
    assert upgrade_credit_cents(subscription=sub, now=NOW) == 1993
    assert change.kind == "upgrade"
    checkout = change.checkout
    assert (checkout.plan_price_cents, checkout.credit_cents, checkout.total_cents) == (7990, 1993, 5997)
    assert checkout.purpose == Checkout.Purpose.UPGRADE and checkout.subscription == sub
    sub.refresh_from_db()
    assert sub.plan == monthly  # nothing changes until it is paid

    # and when paid: a new 90-day period on the new plan, from the payment time
    paid_at = NOW + timedelta(minutes=5)
    upgraded = activate_checkout(checkout=checkout, now=paid_at)
    assert upgraded.pk == sub.pk and upgraded.plan == quarterly
    assert (upgraded.start_date, upgraded.end_date) == (paid_at, paid_at + timedelta(days=90))
    assert upgraded.last_reason == Subscription.Reason.PLAN_CHANGED


def test_credit_rounds_half_up_once_and_is_never_negative(monthly):
    sub = SubscriptionFactory(plan=monthly, start_date=NOW - timedelta(days=40), end_date=NOW - timedelta(days=10))
    assert upgrade_credit_cents(subscription=sub, now=NOW) == 0
    sub.end_date = NOW + timedelta(days=15)  # exactly half: 1495
    assert upgrade_credit_cents(subscription=sub, now=NOW) == 1495
    sub.plan.price_cents = 1  # half a cent rounds up
    assert upgrade_credit_cents(subscription=sub, now=NOW) == 1


def test_repeated_upgrade_request_reuses_the_open_charge(monthly, quarterly):
    sub = SubscriptionFactory(plan=monthly, start_date=NOW - timedelta(days=10), end_date=NOW + timedelta(days=20))
    first = change_plan(subscription=sub, plan=quarterly, now=NOW).checkout
    second = change_plan(subscription=sub, plan=quarterly, now=NOW + timedelta(minutes=1)).checkout
    assert first.pk == second.pk
    assert Checkout.objects.filter(purpose=Checkout.Purpose.UPGRADE).count() == 1


def test_downgrade_is_scheduled_and_applied_at_renewal(monthly, quarterly):
    # given a quarterly subscriber who picks the monthly plan
    sub = SubscriptionFactory(plan=quarterly, start_date=NOW - timedelta(days=88), end_date=NOW + timedelta(days=2))
    change = change_plan(subscription=sub, plan=monthly, now=NOW)
    assert change.kind == "downgrade" and change.checkout is None
    sub.refresh_from_db()
    assert sub.plan == quarterly and sub.next_plan == monthly

    # when the sweep issues the renewal, it is for the cheaper plan
    sweep_subscriptions(now=NOW)
    renewal = Checkout.objects.get(purpose=Checkout.Purpose.RENEWAL)
    assert renewal.plan == monthly and renewal.total_cents == 2990

    # then paying it switches the plan, from the old end date
    renewed = activate_checkout(checkout=renewal, now=NOW)
    assert renewed.plan == monthly and renewed.next_plan is None
    assert renewed.end_date == NOW + timedelta(days=2 + 30)


def test_a_downgrade_after_the_renewal_was_issued_replaces_that_charge(monthly, quarterly):
    sub = SubscriptionFactory(plan=quarterly, start_date=NOW - timedelta(days=88), end_date=NOW + timedelta(days=2))
    sweep_subscriptions(now=NOW)
    old = Checkout.objects.get(purpose=Checkout.Purpose.RENEWAL)

    change_plan(subscription=sub, plan=monthly, now=NOW)
    sweep_subscriptions(now=NOW + timedelta(minutes=5))

    old.refresh_from_db()
    assert old.status == Checkout.Status.CANCELED
    new = Checkout.objects.get(purpose=Checkout.Purpose.RENEWAL, status=Checkout.Status.PENDING)
    assert new.plan == monthly


def test_choosing_the_current_plan_drops_a_scheduled_downgrade(monthly, quarterly):
    sub = SubscriptionFactory(plan=quarterly, next_plan=monthly)
    change = change_plan(subscription=sub, plan=quarterly, now=NOW)
    assert change.kind == "unchanged"
    sub.refresh_from_db()
    assert sub.next_plan is None


def test_plan_change_needs_a_live_subscription(monthly, quarterly):
    sub = SubscriptionFactory(plan=monthly, status=Subscription.Status.EXPIRED)
    with pytest.raises(DomainError):
        change_plan(subscription=sub, plan=quarterly, now=NOW)


def test_upgrade_copies_the_customer_data_of_the_last_payment(monthly, quarterly):
    sub = SubscriptionFactory(plan=monthly, start_date=NOW - timedelta(days=10), end_date=NOW + timedelta(days=20))
    CheckoutFactory(plan=monthly, subscription=sub, user=sub.user, status=Checkout.Status.PAID, paid_at=NOW - timedelta(days=10))
    checkout = change_plan(subscription=sub, plan=quarterly, now=NOW).checkout
    checkout.refresh_from_db()
    assert checkout.customer_document == "52998224725"


# ---------------------------------------------------------------------------
# Issue 20: an upgrade's credit is the unused value of the money actually paid
# (after discounts; trial days are worth nothing), and a plan-limited recurring
# coupon stays on the plans it names.
# ---------------------------------------------------------------------------


def _bought(plan, *, coupon_code="", now=NOW):
    user = UserFactory()
    checkout = create_checkout(
        plan=plan, customer_name="Ana", customer_email=user.email, user=user, coupon_code=coupon_code, now=now
    )
    if checkout.total_cents == 0:
        settle_free_checkout(checkout=checkout, now=now)
        return Subscription.objects.get(user=user)
    return activate_checkout(checkout=checkout, now=now)


def test_an_upgrade_credits_the_unused_part_of_what_a_half_price_coupon_buyer_paid(monthly, quarterly):
    # given: the monthly plan bought at 50% off (R$ 14,95), 10 of 30 days used
    create_coupon(code="METADE", kind=Coupon.Kind.PERCENT, value=50, starts_at=NOW - timedelta(days=1))
    sub = _bought(monthly, coupon_code="METADE")

    # when
    change = change_plan(subscription=sub, plan=quarterly, now=NOW + timedelta(days=10))

    # then: 1495 × 20/30 = 996,67 → 997, not the full price's 1993
    assert change.checkout.credit_cents == 997
    assert run_audit(now=NOW + timedelta(days=10)).violations == []  # contract §9 holds after it

def test_an_upgrade_credits_nothing_for_a_period_a_full_coupon_paid(monthly, quarterly):
    create_coupon(code="GRATIS", kind=Coupon.Kind.PERCENT, value=100, starts_at=NOW - timedelta(days=1))
    sub = _bought(monthly, coupon_code="GRATIS")

    change = change_plan(subscription=sub, plan=quarterly, now=NOW + timedelta(days=10))

    assert change.checkout.credit_cents == 0 and change.checkout.total_cents == 7990


def test_trial_days_left_when_the_first_charge_is_paid_are_worth_nothing_in_an_upgrade_credit(quarterly):
    # given: a 7-day trial whose first charge (R$ 29,90 for 30 days) was paid on day 5: 32 days ahead
    plan = PlanFactory(price_cents=2990, duration_days=30, trial_days=7)
    user = UserFactory()
    trial = create_checkout(plan=plan, customer_name="Ana", customer_email=user.email, user=user, trial=True, now=NOW)
    settle_free_checkout(checkout=trial, now=NOW)
    sweep_subscriptions(now=NOW + timedelta(days=4, seconds=1))
    first_charge = Checkout.objects.get(purpose=Checkout.Purpose.RENEWAL)
    sub = activate_checkout(checkout=first_charge, now=NOW + timedelta(days=5))
    assert sub.end_date == NOW + timedelta(days=37)

    # when: upgrading at once
    change = change_plan(subscription=sub, plan=quarterly, now=NOW + timedelta(days=5))

    # then: the 30 paid days are worth what was paid; the 2 trial days left, nothing
    assert change.checkout.credit_cents == 2990
    assert run_audit(now=NOW + timedelta(days=10)).violations == []  # contract §9 holds after it


def test_days_an_admin_gave_are_worth_nothing_in_an_upgrade_credit(monthly, quarterly):
    # given: an ended subscription the admin activated again: 30 days that no money bought
    sub = SubscriptionFactory(
        plan=monthly, status=Subscription.Status.EXPIRED, start_date=NOW - timedelta(days=60), end_date=NOW - timedelta(days=30)
    )
    activate_subscription(subscription=sub, actor=UserFactory(is_staff=True), reason="cortesia", now=NOW)

    # when: upgrading 10 days later, and paying
    change = change_plan(subscription=sub, plan=quarterly, now=NOW + timedelta(days=10))
    activate_checkout(checkout=change.checkout, now=NOW + timedelta(days=10, minutes=1))

    # then: the full price (found by the money machine: it was credited at the plan's rate)
    assert (change.checkout.credit_cents, change.checkout.total_cents) == (0, 7990)
    assert run_audit(now=NOW + timedelta(days=11)).violations == []


def test_days_an_admin_added_to_a_paid_period_are_worth_nothing_in_an_upgrade_credit(monthly, quarterly):
    # given: the monthly plan paid, and 30 days the admin added on top
    sub = _bought(monthly)
    extend_subscription(subscription=sub, days=30, actor=UserFactory(is_staff=True), reason="cortesia", now=NOW + timedelta(days=1))

    # when: upgrading 10 days after the purchase, and paying
    change = change_plan(subscription=sub, plan=quarterly, now=NOW + timedelta(days=10))
    activate_checkout(checkout=change.checkout, now=NOW + timedelta(days=10, minutes=1))

    # then: only the 20 paid days left count: 2990 × 20/30 = 1993
    assert change.checkout.credit_cents == 1993
    assert run_audit(now=NOW + timedelta(days=11)).violations == []


def test_a_renewal_paid_early_credits_both_paid_periods_at_their_price(monthly, quarterly):
    # given: the monthly plan paid, then its renewal paid 2 days early: 32 paid days ahead
    sub = _bought(monthly)
    sweep_subscriptions(now=NOW + timedelta(days=28))
    renewal = Checkout.objects.get(purpose=Checkout.Purpose.RENEWAL)
    sub = activate_checkout(checkout=renewal, now=NOW + timedelta(days=28))

    change = change_plan(subscription=sub, plan=quarterly, now=NOW + timedelta(days=28))

    # then: 2990 (the renewal's 30 days) + 2990 × 2/30 = 3189,33 → 3189
    assert change.checkout.credit_cents == 3189


def test_a_recurring_coupon_for_one_plan_stops_discounting_after_an_upgrade(monthly, quarterly):
    # given: the monthly plan bought with a coupon for it alone, discounting every renewal
    coupon = create_coupon(code="MENSAL50", kind=Coupon.Kind.PERCENT, value=50, starts_at=NOW - timedelta(days=1), plan_ids=[monthly.pk], renewals=None)
    sub = _bought(monthly, coupon_code="MENSAL50")
    assert sub.coupon == coupon

    # when: upgraded to the quarterly plan, and its renewal comes due
    change = change_plan(subscription=sub, plan=quarterly, now=NOW + timedelta(days=1))
    sub = activate_checkout(checkout=change.checkout, now=NOW + timedelta(days=1))
    sweep_subscriptions(now=sub.end_date - timedelta(days=1))

    # then: the quarterly plan renews at its price; the coupon is off the subscription
    sub.refresh_from_db()
    assert sub.coupon is None and sub.coupon_renewals_left is None
    renewal = Checkout.objects.get(purpose=Checkout.Purpose.RENEWAL)
    assert (renewal.plan, renewal.discount_cents, renewal.total_cents, renewal.coupon) == (quarterly, 0, 7990, None)
    assert run_audit(now=NOW + timedelta(days=10)).violations == []  # contract §9 holds after it

def test_a_recurring_coupon_for_one_plan_does_not_discount_a_scheduled_downgrade(monthly, quarterly):
    # given: the quarterly plan bought with a coupon for it alone; a downgrade to monthly scheduled
    create_coupon(code="TRI50", kind=Coupon.Kind.PERCENT, value=50, starts_at=NOW - timedelta(days=1), plan_ids=[quarterly.pk], renewals=None)
    sub = _bought(quarterly, coupon_code="TRI50")
    change_plan(subscription=sub, plan=monthly, now=NOW + timedelta(days=1))

    # when: the renewal on the monthly plan is issued and paid
    sweep_subscriptions(now=sub.end_date - timedelta(days=1))
    renewal = Checkout.objects.get(purpose=Checkout.Purpose.RENEWAL)
    sub = activate_checkout(checkout=renewal, now=sub.end_date - timedelta(days=1))

    # then: full price, and the coupon no longer rides on the subscription
    assert (renewal.plan, renewal.discount_cents, renewal.total_cents) == (monthly, 0, 2990)
    assert sub.plan == monthly and sub.coupon is None
    assert run_audit(now=NOW + timedelta(days=10)).violations == []  # contract §9 holds after it

def test_a_recurring_coupon_for_every_plan_keeps_discounting_after_an_upgrade(monthly, quarterly):
    create_coupon(code="TODOS50", kind=Coupon.Kind.PERCENT, value=50, starts_at=NOW - timedelta(days=1), renewals=None)
    sub = _bought(monthly, coupon_code="TODOS50")

    change = change_plan(subscription=sub, plan=quarterly, now=NOW + timedelta(days=1))
    sub = activate_checkout(checkout=change.checkout, now=NOW + timedelta(days=1))
    sweep_subscriptions(now=sub.end_date - timedelta(days=1))

    renewal = Checkout.objects.get(purpose=Checkout.Purpose.RENEWAL)
    assert (renewal.discount_cents, renewal.total_cents) == (3995, 3995)
