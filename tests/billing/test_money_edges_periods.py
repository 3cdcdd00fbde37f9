"""Issue 11, periods: no paid day lost, no unpaid day given (upgrades, void charges, snapshots, late payments, refunds)."""

from datetime import timedelta

import pytest
import responses
from django.utils import timezone

from billing import ledger
from billing.gateways import ChargeStatus
from billing.gateways.base import Charge
from billing.ledger_models import LedgerEntry
from billing.models import Checkout, ReconciliationItem, Subscription
from billing.reconciliation import reconcile_payments
from billing.services import (
    ProcessingError,
    activate_checkout,
    apply_charge,
    cancel_subscription_now,
    change_plan,
    create_checkout,
    expire_subscription,
    refund_checkout,
    sweep_subscriptions,
    upgrade_credit_cents,
)
from tests.billing.paymentkit import JP, jp_checkout, junglepay, sandbox, transaction
from tests.factories import CheckoutFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db
NOW = timezone.now().replace(microsecond=0)
DAY = timedelta(days=1)


def paid_subscription(plan, *, days_left=20):
    """A live subscription paid through one checkout of ours (its snapshot is the plan as sold)."""
    sub = SubscriptionFactory(plan=plan, start_date=NOW - (plan.duration_days * DAY - days_left * DAY), end_date=NOW + days_left * DAY)
    paid = CheckoutFactory(
        plan=plan, user=sub.user, subscription=sub, status=Checkout.Status.PAID, paid_at=sub.start_date, created_at=sub.start_date
    )
    # What activate_checkout records: the days this checkout bought (upgrade credits are read from the ledger).
    ledger.record_grant(subscription=sub, starts_at=sub.start_date, ends_at=sub.end_date, cause=LedgerEntry.Cause.NEW, checkout=paid, now=sub.start_date)
    return sub, paid


def renewal_for(sub, *, now=NOW):
    return create_checkout(
        plan=sub.plan, customer_name="Ana", customer_email=sub.user.email, user=sub.user,
        purpose=Checkout.Purpose.RENEWAL, subscription=sub, now=now,
    )


def charge(checkout, status, provider_status, *, amount="total"):
    return Charge(
        transaction_id=checkout.gateway_transaction_id or "282",
        status=status,
        provider_status=provider_status,
        amount_cents=checkout.total_cents if amount == "total" else amount,
        external_ref=str(checkout.public_id),
    )


# --- 1. an upgrade never discards paid time -----------------------------------------------


def test_an_upgrade_paid_after_a_renewal_keeps_the_renewals_days(monthly, quarterly):
    # given: a renewal issued, then an upgrade priced (credit for the 20 days left), then the renewal paid
    sub, _ = paid_subscription(monthly, days_left=20)
    renewal = renewal_for(sub)
    upgrade = change_plan(subscription=sub, plan=quarterly, now=NOW).checkout
    assert upgrade.credit_cents == 1993
    activate_checkout(checkout=renewal, now=NOW)
    sub.refresh_from_db()
    assert sub.end_date == NOW + 50 * DAY

    # when: the upgrade is paid
    upgraded = activate_checkout(checkout=upgrade, now=NOW)

    # then: 90 days, plus the renewal's 30 days at the monthly rate, converted to the quarterly rate
    # (2990 cents of surplus × 90 days / 7990 = 33.68 days), rounded down
    assert upgraded.plan == quarterly
    kept = upgraded.end_date - (NOW + 90 * DAY)
    assert timedelta(days=33, hours=16) < kept <= timedelta(days=33, hours=17)


def test_an_upgrade_paid_later_than_priced_does_not_give_the_days_used_since(monthly, quarterly):
    # given: priced with 20 days left, paid 10 days later (the credit counted 10 days now used)
    sub, _ = paid_subscription(monthly, days_left=20)
    upgrade = change_plan(subscription=sub, plan=quarterly, now=NOW).checkout

    upgraded = activate_checkout(checkout=upgrade, now=NOW + 10 * DAY)

    # then: 90 days less the value of the 10 used days (997 cents ≈ 11.2 quarterly days)
    short = (NOW + 10 * DAY + 90 * DAY) - upgraded.end_date
    assert timedelta(days=11) < short < timedelta(days=11, hours=6)


def test_paying_a_superseded_upgrade_keeps_the_money_for_a_person_and_changes_no_period(monthly, quarterly):
    # given: a first upgrade QR, replaced (voided) by a second one that is paid
    gateway = sandbox()
    sub, _ = paid_subscription(monthly, days_left=20)
    first = change_plan(subscription=sub, plan=quarterly, now=NOW).checkout
    Checkout.objects.filter(pk=first.pk).update(gateway=gateway, gateway_transaction_id="sb-1")
    second = change_plan(subscription=sub, plan=quarterly, now=NOW + timedelta(hours=2)).checkout
    first.refresh_from_db()
    assert first.status == Checkout.Status.CANCELED and second.pk != first.pk
    upgraded = activate_checkout(checkout=second, now=NOW + timedelta(hours=2))
    period = (upgraded.start_date, upgraded.end_date)

    # when: the voided one is paid too (it was still payable at the gateway)
    activate_checkout(checkout=first, now=NOW + timedelta(hours=3))

    # then: the money is recorded and listed for a person; the period is not re-based
    sub.refresh_from_db()
    assert (sub.start_date, sub.end_date) == period
    first.refresh_from_db()
    assert first.status == Checkout.Status.PAID and first.is_late
    item = ReconciliationItem.objects.get(kind=ReconciliationItem.Kind.VOIDED_CHARGE_PAID)
    assert item.checkout == first and item.transaction_id == "sb-1"


# --- 3. ending a subscription voids its open charges ----------------------------------------


def test_a_refund_voids_the_pending_upgrade_and_its_late_payment_gives_no_access(monthly, quarterly):
    sub, paid = paid_subscription(monthly)
    upgrade = change_plan(subscription=sub, plan=quarterly, now=NOW).checkout
    renewal = renewal_for(sub)

    refund_checkout(checkout=paid, now=NOW)
    upgrade.refresh_from_db()
    renewal.refresh_from_db()
    assert upgrade.status == renewal.status == Checkout.Status.CANCELED

    activate_checkout(checkout=upgrade, now=NOW + timedelta(minutes=5))

    sub.refresh_from_db()
    assert sub.status == Subscription.Status.REFUNDED and sub.plan == monthly
    upgrade.refresh_from_db()
    assert upgrade.status == Checkout.Status.PAID and upgrade.is_late


@pytest.mark.parametrize("end", [cancel_subscription_now, expire_subscription])
def test_a_pending_upgrade_cannot_undo_the_admins_decision_to_end_access(monthly, quarterly, end):
    sub, _ = paid_subscription(monthly)
    upgrade = change_plan(subscription=sub, plan=quarterly, now=NOW).checkout

    end(subscription=sub, now=NOW)
    activate_checkout(checkout=upgrade, now=NOW + timedelta(minutes=5))

    sub.refresh_from_db()
    assert not sub.is_live and sub.plan == monthly
    upgrade.refresh_from_db()
    assert upgrade.status == Checkout.Status.PAID and upgrade.is_late


def test_an_upgrade_left_pending_by_an_older_release_still_gives_no_access_after_a_refund(monthly, quarterly):
    # given: the open upgrade was not voided (made before ending voided charges)
    sub, paid = paid_subscription(monthly)
    upgrade = change_plan(subscription=sub, plan=quarterly, now=NOW).checkout
    refund_checkout(checkout=paid, now=NOW)
    Checkout.objects.filter(pk=upgrade.pk).update(status=Checkout.Status.PENDING)

    activate_checkout(checkout=upgrade, now=NOW + timedelta(minutes=5))

    sub.refresh_from_db()
    assert sub.status == Subscription.Status.REFUNDED


# --- 4. the plan as sold, not today's plan --------------------------------------------------


def test_repricing_a_plan_leaves_the_upgrade_credit_of_those_who_paid(monthly):
    sub, _ = paid_subscription(monthly, days_left=20)

    monthly.price_cents = 9990
    monthly.duration_days = 7
    monthly.save()
    sub.refresh_from_db()

    assert upgrade_credit_cents(subscription=sub, now=NOW) == 1993  # 2990 × 20/30, as sold


def test_editing_a_plans_duration_leaves_what_a_created_checkout_grants(monthly):
    checkout = create_checkout(plan=monthly, customer_name="Ana", customer_email="ana@example.com", now=NOW)
    assert checkout.plan_duration_days == 30

    monthly.duration_days = 7
    monthly.save()
    sub = activate_checkout(checkout=checkout, now=NOW)

    assert sub.end_date == NOW + 30 * DAY


def test_the_sweeps_renewal_charges_snapshot_the_plan_as_sold(monthly):
    SubscriptionFactory(plan=monthly, start_date=NOW - 28 * DAY, end_date=NOW + 2 * DAY)

    sweep_subscriptions(now=NOW)

    renewal = Checkout.objects.get(purpose=Checkout.Purpose.RENEWAL)
    assert (renewal.plan_price_cents, renewal.plan_duration_days) == (2990, 30)


# --- 15. a period starts when access is given -----------------------------------------------


def test_a_payment_applied_two_days_late_grants_the_whole_period(monthly):
    checkout = create_checkout(plan=monthly, customer_name="Ana", customer_email="ana@example.com", now=NOW - 2 * DAY)

    sub = activate_checkout(checkout=checkout, paid_at=NOW - 2 * DAY, now=NOW)

    assert (sub.start_date, sub.end_date) == (NOW, NOW + 30 * DAY)
    checkout.refresh_from_db()
    assert checkout.paid_at == NOW - 2 * DAY  # the gateway's time is kept


# --- 14 and the charge edges ----------------------------------------------------------------


def test_a_refund_for_a_checkout_not_paid_here_yet_is_retried_not_dropped(monthly):
    checkout = create_checkout(plan=monthly, customer_name="Ana", customer_email="ana@example.com", now=NOW)

    with pytest.raises(ProcessingError):
        apply_charge(checkout=checkout, charge=charge(checkout, ChargeStatus.REFUNDED, "refunded"), now=NOW)

    # and once the payment has landed, the retry applies it
    activate_checkout(checkout=checkout, now=NOW)
    checkout.refresh_from_db()
    apply_charge(checkout=checkout, charge=charge(checkout, ChargeStatus.REFUNDED, "refunded"), now=NOW)
    checkout.refresh_from_db()
    assert checkout.status == Checkout.Status.REFUNDED
    assert checkout.subscription.status == Subscription.Status.REFUNDED


def test_a_fetched_charge_without_an_amount_never_activates(monthly):
    checkout = create_checkout(plan=monthly, customer_name="Ana", customer_email="ana@example.com", now=NOW)

    with pytest.raises(ProcessingError):
        apply_charge(checkout=checkout, charge=charge(checkout, ChargeStatus.PAID, "paid", amount=None), now=NOW)

    checkout.refresh_from_db()
    assert checkout.status == Checkout.Status.PENDING
    assert not Subscription.objects.live().exists()


def test_a_reversed_dispute_restores_access(monthly):
    # given: paid, then disputed (MED: access revoked at once)
    checkout = create_checkout(plan=monthly, customer_name="Ana", customer_email="ana@example.com", now=NOW)
    sub = activate_checkout(checkout=checkout, now=NOW)
    checkout.refresh_from_db()
    apply_charge(checkout=checkout, charge=charge(checkout, ChargeStatus.REFUNDED, "in_protest"), now=NOW + DAY)
    sub.refresh_from_db()
    assert sub.status == Subscription.Status.REFUNDED

    # when: the dispute is decided for us and the gateway says paid again
    checkout.refresh_from_db()
    apply_charge(checkout=checkout, charge=charge(checkout, ChargeStatus.PAID, "paid"), now=NOW + 2 * DAY)

    # then: access is back, on the period that was paid
    sub.refresh_from_db()
    checkout.refresh_from_db()
    assert checkout.status == Checkout.Status.PAID
    assert sub.status == Subscription.Status.ACTIVE and sub.end_date == NOW + 30 * DAY


def test_a_paid_after_a_plain_refund_does_not_restore_access(monthly):
    checkout = create_checkout(plan=monthly, customer_name="Ana", customer_email="ana@example.com", now=NOW)
    sub = activate_checkout(checkout=checkout, now=NOW)
    checkout.refresh_from_db()
    apply_charge(checkout=checkout, charge=charge(checkout, ChargeStatus.REFUNDED, "refunded"), now=NOW + DAY)

    checkout.refresh_from_db()
    outcome, _note = apply_charge(checkout=checkout, charge=charge(checkout, ChargeStatus.PAID, "paid"), now=NOW + 2 * DAY)

    sub.refresh_from_db()
    assert outcome == "ignored" and sub.status == Subscription.Status.REFUNDED


@responses.activate
def test_a_refund_found_only_by_reconciliation_revokes_access(settings):
    # given: paid here, refunded at JunglePay (the refund's postback was lost)
    settings.JUNGLEPAY_API_URL = JP
    jp = junglepay()
    checkout = jp_checkout(jp, transaction_id="282")
    sub = activate_checkout(checkout=checkout, now=NOW)
    refunded = transaction(checkout, status="refunded")
    responses.upsert(responses.GET, f"{JP}/transactions", json={"data": [refunded], "pagination": {"page": 1, "totalPages": 1}})
    responses.get(f"{JP}/transactions/282", json=refunded)

    [report] = reconcile_payments()

    assert report.fixed == 1
    checkout.refresh_from_db()
    sub.refresh_from_db()
    assert checkout.status == Checkout.Status.REFUNDED and sub.status == Subscription.Status.REFUNDED
    assert ReconciliationItem.objects.get().kind == ReconciliationItem.Kind.MISSED_REFUND


def test_an_upgrade_paid_after_its_period_ended_gets_no_credit_for_the_days_used_since(monthly, quarterly):
    # given: priced with 20 days of credit, paid 30 days later (the old period over, the subscription expired)
    sub, _ = paid_subscription(monthly, days_left=20)
    upgrade = change_plan(subscription=sub, plan=quarterly, now=NOW).checkout
    later = NOW + 30 * DAY
    sweep_subscriptions(now=later)
    sub.refresh_from_db()
    assert not sub.is_live

    upgraded = activate_checkout(checkout=upgrade, now=later)

    # then: the price paid (7990 − 1993) buys 5997/7990 of 90 days, rounded down
    assert upgraded.end_date - later == timedelta(seconds=5997 * 90 * 86400 // 7990)


def test_a_renewal_voided_by_a_paid_upgrade_gives_no_extra_period_when_paid(monthly, quarterly):
    sub, _ = paid_subscription(monthly, days_left=2)
    renewal = renewal_for(sub)
    upgraded = activate_checkout(checkout=change_plan(subscription=sub, plan=quarterly, now=NOW).checkout, now=NOW)
    period = (upgraded.start_date, upgraded.end_date)
    renewal.refresh_from_db()
    assert renewal.status == Checkout.Status.CANCELED

    activate_checkout(checkout=renewal, now=NOW + timedelta(minutes=5))

    sub.refresh_from_db()
    assert (sub.start_date, sub.end_date, sub.plan) == (*period, quarterly)
    renewal.refresh_from_db()
    assert renewal.status == Checkout.Status.PAID and renewal.is_late


def test_refunding_a_kept_void_payment_leaves_the_period_other_money_paid_alone(monthly, quarterly):
    # given: a superseded upgrade paid after the one that counted (kept for a person)
    sub, _ = paid_subscription(monthly, days_left=20)
    first = change_plan(subscription=sub, plan=quarterly, now=NOW).checkout
    second = change_plan(subscription=sub, plan=quarterly, now=NOW + timedelta(hours=2)).checkout
    activate_checkout(checkout=second, now=NOW + timedelta(hours=2))
    activate_checkout(checkout=first, now=NOW + timedelta(hours=3))

    # when: the person refunds it
    first.refresh_from_db()
    refund_checkout(checkout=first, now=NOW + timedelta(hours=4))

    # then: the subscription the second upgrade paid for stays live
    sub.refresh_from_db()
    assert sub.status == Subscription.Status.ACTIVE and sub.plan == quarterly
