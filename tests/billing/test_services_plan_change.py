from datetime import timedelta

import pytest

from billing import ledger
from billing.audit import run_audit
from billing.ledger_models import LedgerEntry
from billing.models import Checkout, Coupon, ReconciliationItem, Subscription
from billing.services import (
    activate_checkout,
    activate_subscription,
    cancel_subscription_now,
    change_plan,
    create_checkout,
    create_coupon,
    expire_subscription,
    extend_subscription,
    refund_checkout,
    settle_free_checkout,
    sweep_subscriptions,
    upgrade_credit_cents,
)
from config.errors import DomainError
from tests.billing.paymentkit import sandbox
from tests.factories import CheckoutFactory, PlanFactory, SubscriptionFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_upgrade_proration_worked_example(monthly, quarterly, now):
    # given: R$ 29,90 for 30 days, 10 days used
    sub = SubscriptionFactory(plan=monthly, start_date=now - timedelta(days=10), end_date=now + timedelta(days=20))

    # when: upgrading to R$ 79,90 / 90 days
    change = change_plan(subscription=sub, plan=quarterly, now=now)

    # then: unused = 2990 × 20/30 = 1993,33… → 1993; charge = 7990 − 1993 = 5997
    assert upgrade_credit_cents(subscription=sub, now=now) == 1993
    assert change.kind == "upgrade"
    checkout = change.checkout
    assert (checkout.plan_price_cents, checkout.credit_cents, checkout.total_cents) == (7990, 1993, 5997)
    assert checkout.purpose == Checkout.Purpose.UPGRADE and checkout.subscription == sub
    sub.refresh_from_db()
    assert sub.plan == monthly  # nothing changes until it is paid

    # and when paid: a new 90-day period on the new plan, from the payment time
    paid_at = now + timedelta(minutes=5)
    upgraded = activate_checkout(checkout=checkout, now=paid_at)
    assert upgraded.pk == sub.pk and upgraded.plan == quarterly
    assert (upgraded.start_date, upgraded.end_date) == (paid_at, paid_at + timedelta(days=90))
    assert upgraded.last_reason == Subscription.Reason.PLAN_CHANGED


def test_credit_rounds_half_up_once_and_is_never_negative(monthly, now):
    sub = SubscriptionFactory(plan=monthly, start_date=now - timedelta(days=40), end_date=now - timedelta(days=10))
    assert upgrade_credit_cents(subscription=sub, now=now) == 0
    sub.end_date = now + timedelta(days=15)  # exactly half: 1495
    assert upgrade_credit_cents(subscription=sub, now=now) == 1495
    sub.plan.price_cents = 1  # half a cent rounds up
    assert upgrade_credit_cents(subscription=sub, now=now) == 1


def test_repeated_upgrade_request_reuses_the_open_charge(monthly, quarterly, now):
    sub = SubscriptionFactory(plan=monthly, start_date=now - timedelta(days=10), end_date=now + timedelta(days=20))
    first = change_plan(subscription=sub, plan=quarterly, now=now).checkout
    second = change_plan(subscription=sub, plan=quarterly, now=now + timedelta(minutes=1)).checkout
    assert first.pk == second.pk
    assert Checkout.objects.filter(purpose=Checkout.Purpose.UPGRADE).count() == 1


def test_downgrade_is_scheduled_and_applied_at_renewal(monthly, quarterly, now):
    # given a quarterly subscriber who picks the monthly plan
    sub = SubscriptionFactory(plan=quarterly, start_date=now - timedelta(days=88), end_date=now + timedelta(days=2))
    change = change_plan(subscription=sub, plan=monthly, now=now)
    assert change.kind == "downgrade" and change.checkout is None
    sub.refresh_from_db()
    assert sub.plan == quarterly and sub.next_plan == monthly

    # when the sweep issues the renewal, it is for the cheaper plan
    sweep_subscriptions(now=now)
    renewal = Checkout.objects.get(purpose=Checkout.Purpose.RENEWAL)
    assert renewal.plan == monthly and renewal.total_cents == 2990

    # then paying it switches the plan, from the old end date
    renewed = activate_checkout(checkout=renewal, now=now)
    assert renewed.plan == monthly and renewed.next_plan is None
    assert renewed.end_date == now + timedelta(days=2 + 30)


def test_a_downgrade_after_the_renewal_was_issued_replaces_that_charge(monthly, quarterly, now):
    sub = SubscriptionFactory(plan=quarterly, start_date=now - timedelta(days=88), end_date=now + timedelta(days=2))
    sweep_subscriptions(now=now)
    old = Checkout.objects.get(purpose=Checkout.Purpose.RENEWAL)

    change_plan(subscription=sub, plan=monthly, now=now)
    sweep_subscriptions(now=now + timedelta(minutes=5))

    old.refresh_from_db()
    assert old.status == Checkout.Status.CANCELED
    new = Checkout.objects.get(purpose=Checkout.Purpose.RENEWAL, status=Checkout.Status.PENDING)
    assert new.plan == monthly


def test_choosing_the_current_plan_drops_a_scheduled_downgrade(monthly, quarterly, now):
    sub = SubscriptionFactory(plan=quarterly, next_plan=monthly)
    change = change_plan(subscription=sub, plan=quarterly, now=now)
    assert change.kind == "unchanged"
    sub.refresh_from_db()
    assert sub.next_plan is None


def test_plan_change_needs_a_live_subscription(monthly, quarterly, now):
    sub = SubscriptionFactory(plan=monthly, status=Subscription.Status.EXPIRED)
    with pytest.raises(DomainError):
        change_plan(subscription=sub, plan=quarterly, now=now)


def test_upgrade_copies_the_customer_data_of_the_last_payment(monthly, quarterly, now):
    sub = SubscriptionFactory(plan=monthly, start_date=now - timedelta(days=10), end_date=now + timedelta(days=20))
    CheckoutFactory(plan=monthly, subscription=sub, user=sub.user, status=Checkout.Status.PAID, paid_at=now - timedelta(days=10))
    checkout = change_plan(subscription=sub, plan=quarterly, now=now).checkout
    checkout.refresh_from_db()
    assert checkout.customer_document == "52998224725"


# ---------------------------------------------------------------------------
# An upgrade's credit is the unused value of the money actually paid
# (after discounts; trial days are worth nothing), and a plan-limited recurring
# coupon stays on the plans it names.
# ---------------------------------------------------------------------------


def _bought(plan, *, coupon_code="", now):
    user = UserFactory()
    checkout = create_checkout(
        plan=plan, customer_name="Ana", customer_email=user.email, user=user, coupon_code=coupon_code, now=now
    )
    if checkout.total_cents == 0:
        settle_free_checkout(checkout=checkout, now=now)
        return Subscription.objects.get(user=user)
    return activate_checkout(checkout=checkout, now=now)


def test_an_upgrade_credits_the_unused_part_of_what_a_half_price_coupon_buyer_paid(monthly, quarterly, now):
    # given: the monthly plan bought at 50% off (R$ 14,95), 10 of 30 days used
    create_coupon(code="METADE", kind=Coupon.Kind.PERCENT, value=50, starts_at=now - timedelta(days=1))
    sub = _bought(monthly, coupon_code="METADE", now=now)

    # when
    change = change_plan(subscription=sub, plan=quarterly, now=now + timedelta(days=10))

    # then: 1495 × 20/30 = 996,67 → 997, not the full price's 1993
    assert change.checkout.credit_cents == 997
    assert run_audit(now=now + timedelta(days=10)).violations == []  # contract §9 holds after it

def test_an_upgrade_credits_nothing_for_a_period_a_full_coupon_paid(monthly, quarterly, now):
    create_coupon(code="GRATIS", kind=Coupon.Kind.PERCENT, value=100, starts_at=now - timedelta(days=1))
    sub = _bought(monthly, coupon_code="GRATIS", now=now)

    change = change_plan(subscription=sub, plan=quarterly, now=now + timedelta(days=10))

    assert change.checkout.credit_cents == 0 and change.checkout.total_cents == 7990


def test_trial_days_left_when_the_first_charge_is_paid_are_worth_nothing_in_an_upgrade_credit(quarterly, now):
    # given: a 7-day trial whose first charge (R$ 29,90 for 30 days) was paid on day 5: 32 days ahead
    plan = PlanFactory(price_cents=2990, duration_days=30, trial_days=7)
    user = UserFactory()
    trial = create_checkout(plan=plan, customer_name="Ana", customer_email=user.email, user=user, trial=True, now=now)
    settle_free_checkout(checkout=trial, now=now)
    sweep_subscriptions(now=now + timedelta(days=4, seconds=1))
    first_charge = Checkout.objects.get(purpose=Checkout.Purpose.RENEWAL)
    sub = activate_checkout(checkout=first_charge, now=now + timedelta(days=5))
    assert sub.end_date == now + timedelta(days=37)

    # when: upgrading at once
    change = change_plan(subscription=sub, plan=quarterly, now=now + timedelta(days=5))

    # then: the 30 paid days are worth what was paid; the 2 trial days left, nothing
    assert change.checkout.credit_cents == 2990
    assert run_audit(now=now + timedelta(days=10)).violations == []  # contract §9 holds after it


def test_days_an_admin_gave_are_worth_nothing_in_an_upgrade_credit(monthly, quarterly, now):
    # given: an ended subscription the admin activated again: 30 days that no money bought
    sub = SubscriptionFactory(
        plan=monthly, status=Subscription.Status.EXPIRED, start_date=now - timedelta(days=60), end_date=now - timedelta(days=30)
    )
    activate_subscription(subscription=sub, actor=UserFactory(is_staff=True), reason="cortesia", now=now)

    # when: upgrading 10 days later, and paying
    change = change_plan(subscription=sub, plan=quarterly, now=now + timedelta(days=10))
    activate_checkout(checkout=change.checkout, now=now + timedelta(days=10, minutes=1))

    # then: the full price (found by the money machine: it was credited at the plan's rate)
    assert (change.checkout.credit_cents, change.checkout.total_cents) == (0, 7990)
    assert run_audit(now=now + timedelta(days=11)).violations == []


def test_days_an_admin_added_to_a_paid_period_are_worth_nothing_in_an_upgrade_credit(monthly, quarterly, now):
    # given: the monthly plan paid, and 30 days the admin added on top
    sub = _bought(monthly, now=now)
    extend_subscription(subscription=sub, days=30, actor=UserFactory(is_staff=True), reason="cortesia", now=now + timedelta(days=1))

    # when: upgrading 10 days after the purchase, and paying
    change = change_plan(subscription=sub, plan=quarterly, now=now + timedelta(days=10))
    activate_checkout(checkout=change.checkout, now=now + timedelta(days=10, minutes=1))

    # then: only the 20 paid days left count: 2990 × 20/30 = 1993
    assert change.checkout.credit_cents == 1993
    assert run_audit(now=now + timedelta(days=11)).violations == []


def test_a_renewal_paid_early_credits_both_paid_periods_at_their_price(monthly, quarterly, now):
    # given: the monthly plan paid, then its renewal paid 2 days early: 32 paid days ahead
    sub = _bought(monthly, now=now)
    sweep_subscriptions(now=now + timedelta(days=28))
    renewal = Checkout.objects.get(purpose=Checkout.Purpose.RENEWAL)
    sub = activate_checkout(checkout=renewal, now=now + timedelta(days=28))

    change = change_plan(subscription=sub, plan=quarterly, now=now + timedelta(days=28))

    # then: 2990 (the renewal's 30 days) + 2990 × 2/30 = 3189,33 → 3189
    assert change.checkout.credit_cents == 3189


def test_a_recurring_coupon_for_one_plan_stops_discounting_after_an_upgrade(monthly, quarterly, now):
    # given: the monthly plan bought with a coupon for it alone, discounting every renewal
    coupon = create_coupon(code="MENSAL50", kind=Coupon.Kind.PERCENT, value=50, starts_at=now - timedelta(days=1), plan_ids=[monthly.pk], renewals=None)
    sub = _bought(monthly, coupon_code="MENSAL50", now=now)
    assert sub.coupon == coupon

    # when: upgraded to the quarterly plan, and its renewal comes due
    change = change_plan(subscription=sub, plan=quarterly, now=now + timedelta(days=1))
    sub = activate_checkout(checkout=change.checkout, now=now + timedelta(days=1))
    sweep_subscriptions(now=sub.end_date - timedelta(days=1))

    # then: the quarterly plan renews at its price; the coupon is off the subscription
    sub.refresh_from_db()
    assert sub.coupon is None and sub.coupon_renewals_left is None
    renewal = Checkout.objects.get(purpose=Checkout.Purpose.RENEWAL)
    assert (renewal.plan, renewal.discount_cents, renewal.total_cents, renewal.coupon) == (quarterly, 0, 7990, None)
    assert run_audit(now=now + timedelta(days=10)).violations == []  # contract §9 holds after it

def test_a_recurring_coupon_for_one_plan_does_not_discount_a_scheduled_downgrade(monthly, quarterly, now):
    # given: the quarterly plan bought with a coupon for it alone; a downgrade to monthly scheduled
    create_coupon(code="TRI50", kind=Coupon.Kind.PERCENT, value=50, starts_at=now - timedelta(days=1), plan_ids=[quarterly.pk], renewals=None)
    sub = _bought(quarterly, coupon_code="TRI50", now=now)
    change_plan(subscription=sub, plan=monthly, now=now + timedelta(days=1))

    # when: the renewal on the monthly plan is issued and paid
    sweep_subscriptions(now=sub.end_date - timedelta(days=1))
    renewal = Checkout.objects.get(purpose=Checkout.Purpose.RENEWAL)
    sub = activate_checkout(checkout=renewal, now=sub.end_date - timedelta(days=1))

    # then: full price, and the coupon no longer rides on the subscription
    assert (renewal.plan, renewal.discount_cents, renewal.total_cents) == (monthly, 0, 2990)
    assert sub.plan == monthly and sub.coupon is None
    assert run_audit(now=now + timedelta(days=10)).violations == []  # contract §9 holds after it

def test_a_recurring_coupon_for_every_plan_keeps_discounting_after_an_upgrade(monthly, quarterly, now):
    create_coupon(code="TODOS50", kind=Coupon.Kind.PERCENT, value=50, starts_at=now - timedelta(days=1), renewals=None)
    sub = _bought(monthly, coupon_code="TODOS50", now=now)

    change = change_plan(subscription=sub, plan=quarterly, now=now + timedelta(days=1))
    sub = activate_checkout(checkout=change.checkout, now=now + timedelta(days=1))
    sweep_subscriptions(now=sub.end_date - timedelta(days=1))

    renewal = Checkout.objects.get(purpose=Checkout.Purpose.RENEWAL)
    assert (renewal.discount_cents, renewal.total_cents) == (3995, 3995)


DAY = timedelta(days=1)


def paid_subscription(plan, *, days_left=20, now):
    """A live subscription paid through one checkout of ours (its snapshot is the plan as sold)."""
    sub = SubscriptionFactory(plan=plan, start_date=now - (plan.duration_days * DAY - days_left * DAY), end_date=now + days_left * DAY)
    paid = CheckoutFactory(
        plan=plan, user=sub.user, subscription=sub, status=Checkout.Status.PAID, paid_at=sub.start_date, created_at=sub.start_date
    )
    # What activate_checkout records: the days this checkout bought (upgrade credits are read from the ledger).
    ledger.record_grant(subscription=sub, starts_at=sub.start_date, ends_at=sub.end_date, cause=LedgerEntry.Cause.NEW, checkout=paid, now=sub.start_date)
    return sub, paid


def renewal_for(sub, *, now):
    return create_checkout(
        plan=sub.plan, customer_name="Ana", customer_email=sub.user.email, user=sub.user,
        purpose=Checkout.Purpose.RENEWAL, subscription=sub, now=now,
    )


def test_an_upgrade_paid_after_a_renewal_keeps_the_renewals_days(monthly, quarterly, now):
    # given: a renewal issued, then an upgrade priced (credit for the 20 days left), then the renewal paid
    sub, _ = paid_subscription(monthly, days_left=20, now=now)
    renewal = renewal_for(sub, now=now)
    upgrade = change_plan(subscription=sub, plan=quarterly, now=now).checkout
    assert upgrade.credit_cents == 1993
    activate_checkout(checkout=renewal, now=now)
    sub.refresh_from_db()
    assert sub.end_date == now + 50 * DAY

    # when: the upgrade is paid
    upgraded = activate_checkout(checkout=upgrade, now=now)

    # then: 90 days, plus the renewal's 30 days at the monthly rate, converted to the quarterly rate
    # (2990 cents of surplus × 90 days / 7990 = 33.68 days), rounded down
    assert upgraded.plan == quarterly
    kept = upgraded.end_date - (now + 90 * DAY)
    assert timedelta(days=33, hours=16) < kept <= timedelta(days=33, hours=17)


def test_an_upgrade_paid_later_than_priced_does_not_give_the_days_used_since(monthly, quarterly, now):
    # given: priced with 20 days left, paid 10 days later (the credit counted 10 days now used)
    sub, _ = paid_subscription(monthly, days_left=20, now=now)
    upgrade = change_plan(subscription=sub, plan=quarterly, now=now).checkout

    upgraded = activate_checkout(checkout=upgrade, now=now + 10 * DAY)

    # then: 90 days less the value of the 10 used days (997 cents ≈ 11.2 quarterly days)
    short = (now + 10 * DAY + 90 * DAY) - upgraded.end_date
    assert timedelta(days=11) < short < timedelta(days=11, hours=6)


def test_paying_a_superseded_upgrade_keeps_the_money_for_a_person_and_changes_no_period(monthly, quarterly, now):
    # given: a first upgrade QR, replaced (voided) by a second one that is paid
    gateway = sandbox()
    sub, _ = paid_subscription(monthly, days_left=20, now=now)
    first = change_plan(subscription=sub, plan=quarterly, now=now).checkout
    Checkout.objects.filter(pk=first.pk).update(gateway=gateway, gateway_transaction_id="sb-1")
    second = change_plan(subscription=sub, plan=quarterly, now=now + timedelta(hours=2)).checkout
    first.refresh_from_db()
    assert first.status == Checkout.Status.CANCELED and second.pk != first.pk
    upgraded = activate_checkout(checkout=second, now=now + timedelta(hours=2))
    period = (upgraded.start_date, upgraded.end_date)

    # when: the voided one is paid too (it was still payable at the gateway)
    activate_checkout(checkout=first, now=now + timedelta(hours=3))

    # then: the money is recorded and listed for a person; the period is not re-based
    sub.refresh_from_db()
    assert (sub.start_date, sub.end_date) == period
    first.refresh_from_db()
    assert first.status == Checkout.Status.PAID and first.is_late
    item = ReconciliationItem.objects.get(kind=ReconciliationItem.Kind.VOIDED_CHARGE_PAID)
    assert item.checkout == first and item.transaction_id == "sb-1"


def test_a_refund_voids_the_pending_upgrade_and_its_late_payment_gives_no_access(monthly, quarterly, now):
    sub, paid = paid_subscription(monthly, now=now)
    upgrade = change_plan(subscription=sub, plan=quarterly, now=now).checkout
    renewal = renewal_for(sub, now=now)

    refund_checkout(checkout=paid, now=now)
    upgrade.refresh_from_db()
    renewal.refresh_from_db()
    assert upgrade.status == renewal.status == Checkout.Status.CANCELED

    activate_checkout(checkout=upgrade, now=now + timedelta(minutes=5))

    sub.refresh_from_db()
    assert sub.status == Subscription.Status.REFUNDED and sub.plan == monthly
    upgrade.refresh_from_db()
    assert upgrade.status == Checkout.Status.PAID and upgrade.is_late


@pytest.mark.parametrize("end", [cancel_subscription_now, expire_subscription])
def test_a_pending_upgrade_cannot_undo_the_admins_decision_to_end_access(monthly, quarterly, end, now):
    sub, _ = paid_subscription(monthly, now=now)
    upgrade = change_plan(subscription=sub, plan=quarterly, now=now).checkout

    end(subscription=sub, now=now)
    activate_checkout(checkout=upgrade, now=now + timedelta(minutes=5))

    sub.refresh_from_db()
    assert not sub.is_live and sub.plan == monthly
    upgrade.refresh_from_db()
    assert upgrade.status == Checkout.Status.PAID and upgrade.is_late


def test_an_upgrade_left_pending_by_an_older_release_still_gives_no_access_after_a_refund(monthly, quarterly, now):
    # given: the open upgrade was not voided (made before ending voided charges)
    sub, paid = paid_subscription(monthly, now=now)
    upgrade = change_plan(subscription=sub, plan=quarterly, now=now).checkout
    refund_checkout(checkout=paid, now=now)
    Checkout.objects.filter(pk=upgrade.pk).update(status=Checkout.Status.PENDING)

    activate_checkout(checkout=upgrade, now=now + timedelta(minutes=5))

    sub.refresh_from_db()
    assert sub.status == Subscription.Status.REFUNDED


def test_repricing_a_plan_leaves_the_upgrade_credit_of_those_who_paid(monthly, now):
    sub, _ = paid_subscription(monthly, days_left=20, now=now)

    monthly.price_cents = 9990
    monthly.duration_days = 7
    monthly.save()
    sub.refresh_from_db()

    assert upgrade_credit_cents(subscription=sub, now=now) == 1993  # 2990 × 20/30, as sold


def test_an_upgrade_paid_after_its_period_ended_gets_no_credit_for_the_days_used_since(monthly, quarterly, now):
    # given: priced with 20 days of credit, paid 30 days later (the old period over, the subscription expired)
    sub, _ = paid_subscription(monthly, days_left=20, now=now)
    upgrade = change_plan(subscription=sub, plan=quarterly, now=now).checkout
    later = now + 30 * DAY
    sweep_subscriptions(now=later)
    sub.refresh_from_db()
    assert not sub.is_live

    upgraded = activate_checkout(checkout=upgrade, now=later)

    # then: the price paid (7990 − 1993) buys 5997/7990 of 90 days, rounded down
    assert upgraded.end_date - later == timedelta(seconds=5997 * 90 * 86400 // 7990)


def test_a_renewal_voided_by_a_paid_upgrade_gives_no_extra_period_when_paid(monthly, quarterly, now):
    sub, _ = paid_subscription(monthly, days_left=2, now=now)
    renewal = renewal_for(sub, now=now)
    upgraded = activate_checkout(checkout=change_plan(subscription=sub, plan=quarterly, now=now).checkout, now=now)
    period = (upgraded.start_date, upgraded.end_date)
    renewal.refresh_from_db()
    assert renewal.status == Checkout.Status.CANCELED

    activate_checkout(checkout=renewal, now=now + timedelta(minutes=5))

    sub.refresh_from_db()
    assert (sub.start_date, sub.end_date, sub.plan) == (*period, quarterly)
    renewal.refresh_from_db()
    assert renewal.status == Checkout.Status.PAID and renewal.is_late


def test_refunding_a_kept_void_payment_leaves_the_period_other_money_paid_alone(monthly, quarterly, now):
    # given: a superseded upgrade paid after the one that counted (kept for a person)
    sub, _ = paid_subscription(monthly, days_left=20, now=now)
    first = change_plan(subscription=sub, plan=quarterly, now=now).checkout
    second = change_plan(subscription=sub, plan=quarterly, now=now + timedelta(hours=2)).checkout
    activate_checkout(checkout=second, now=now + timedelta(hours=2))
    activate_checkout(checkout=first, now=now + timedelta(hours=3))

    # when: the person refunds it
    first.refresh_from_db()
    refund_checkout(checkout=first, now=now + timedelta(hours=4))

    # then: the subscription the second upgrade paid for stays live
    sub.refresh_from_db()
    assert sub.status == Subscription.Status.ACTIVE and sub.plan == quarterly
