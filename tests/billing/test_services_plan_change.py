from datetime import timedelta

import pytest
from django.utils import timezone

from billing.models import Checkout, Subscription
from billing.services import activate_checkout, change_plan, sweep_subscriptions, upgrade_credit_cents
from config.errors import DomainError
from tests.factories import CheckoutFactory, PlanFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db
NOW = timezone.now().replace(microsecond=0)


@pytest.fixture
def monthly():
    return PlanFactory(name="Mensal", price_cents=2990, duration_days=30)


@pytest.fixture
def quarterly():
    return PlanFactory(name="Trimestral", price_cents=7990, duration_days=90)


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
