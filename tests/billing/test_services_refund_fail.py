from datetime import timedelta

import pytest
import responses

from billing.exceptions import TransitionNotAllowed
from billing.gateways import ChargeStatus
from billing.models import Checkout, ReconciliationItem, Subscription
from billing.reconciliation import reconcile_payments
from billing.services import (
    ProcessingError,
    activate_checkout,
    apply_charge,
    create_checkout,
    fail_checkout,
    refund_checkout,
)
from tests.billing.paymentkit import JP, charge, jp_checkout, junglepay, transaction
from tests.factories import PlanFactory, UserFactory

pytestmark = pytest.mark.django_db


def _paid_checkout(*, now):
    checkout = create_checkout(plan=PlanFactory(), customer_name="Ana", customer_email="ana@example.com", now=now)
    activate_checkout(checkout=checkout, now=now)
    checkout.refresh_from_db()
    return checkout


def test_refund_revokes_access_at_once(now):
    checkout = _paid_checkout(now=now)
    user = checkout.user
    assert Subscription.objects.granting_access(now).filter(user=user).exists()

    refund_checkout(checkout=checkout, now=now + timedelta(days=1))

    checkout.refresh_from_db()
    sub = checkout.subscription
    assert checkout.status == Checkout.Status.REFUNDED
    assert sub.status == Subscription.Status.REFUNDED and sub.last_reason == Subscription.Reason.REFUNDED
    assert not Subscription.objects.granting_access(now + timedelta(days=1)).filter(user=user).exists()


def test_refund_twice_changes_nothing_the_second_time(now):
    checkout = _paid_checkout(now=now)
    refund_checkout(checkout=checkout, now=now)
    sub_before = Subscription.objects.get(pk=checkout.subscription_id)

    refund_checkout(checkout=checkout, now=now + timedelta(days=3))

    sub_after = Subscription.objects.get(pk=checkout.subscription_id)
    assert sub_after.last_transition_at == sub_before.last_transition_at


def test_a_pending_checkout_cannot_be_refunded():
    checkout = create_checkout(plan=PlanFactory(), customer_name="Ana", customer_email="ana@example.com")
    with pytest.raises(TransitionNotAllowed):
        refund_checkout(checkout=checkout)


def test_a_refunded_checkout_cannot_be_activated_again(now):
    checkout = _paid_checkout(now=now)
    refund_checkout(checkout=checkout, now=now)
    with pytest.raises(TransitionNotAllowed):
        activate_checkout(checkout=checkout, now=now)


def test_an_expired_first_charge_ends_its_pending_subscription_as_never_paid(now):
    user = UserFactory()
    checkout = create_checkout(plan=PlanFactory(), customer_name="Ana", customer_email=user.email, user=user)

    fail_checkout(checkout=checkout, status=Checkout.Status.EXPIRED, now=now)

    checkout.refresh_from_db()
    assert checkout.status == Checkout.Status.EXPIRED
    assert checkout.subscription.status == Subscription.Status.EXPIRED
    assert checkout.subscription.last_reason == Subscription.Reason.NEVER_PAID


def test_fail_never_moves_a_paid_checkout(now):
    checkout = _paid_checkout(now=now)
    fail_checkout(checkout=checkout, status=Checkout.Status.FAILED, now=now)
    checkout.refresh_from_db()
    assert checkout.status == Checkout.Status.PAID
    assert checkout.subscription.status == Subscription.Status.ACTIVE


def test_fail_is_idempotent(now):
    checkout = create_checkout(plan=PlanFactory(), customer_name="Ana", customer_email="ana@example.com")
    fail_checkout(checkout=checkout, status=Checkout.Status.CANCELED, now=now)
    fail_checkout(checkout=checkout, status=Checkout.Status.EXPIRED, now=now)
    checkout.refresh_from_db()
    assert checkout.status == Checkout.Status.CANCELED


DAY = timedelta(days=1)


def test_a_refund_for_a_checkout_not_paid_here_yet_is_retried_not_dropped(monthly, now):
    checkout = create_checkout(plan=monthly, customer_name="Ana", customer_email="ana@example.com", now=now)

    with pytest.raises(ProcessingError):
        apply_charge(checkout=checkout, charge=charge(checkout, ChargeStatus.REFUNDED, "refunded"), now=now)

    # and once the payment has landed, the retry applies it
    activate_checkout(checkout=checkout, now=now)
    checkout.refresh_from_db()
    apply_charge(checkout=checkout, charge=charge(checkout, ChargeStatus.REFUNDED, "refunded"), now=now)
    checkout.refresh_from_db()
    assert checkout.status == Checkout.Status.REFUNDED
    assert checkout.subscription.status == Subscription.Status.REFUNDED


def test_a_reversed_dispute_restores_access(monthly, now):
    # given: paid, then disputed (MED: access revoked at once)
    checkout = create_checkout(plan=monthly, customer_name="Ana", customer_email="ana@example.com", now=now)
    sub = activate_checkout(checkout=checkout, now=now)
    checkout.refresh_from_db()
    apply_charge(checkout=checkout, charge=charge(checkout, ChargeStatus.REFUNDED, "in_protest"), now=now + DAY)
    sub.refresh_from_db()
    assert sub.status == Subscription.Status.REFUNDED

    # when: the dispute is decided for us and the gateway says paid again
    checkout.refresh_from_db()
    apply_charge(checkout=checkout, charge=charge(checkout, ChargeStatus.PAID, "paid"), now=now + 2 * DAY)

    # then: access is back, on the period that was paid
    sub.refresh_from_db()
    checkout.refresh_from_db()
    assert checkout.status == Checkout.Status.PAID
    assert sub.status == Subscription.Status.ACTIVE and sub.end_date == now + 30 * DAY


def test_a_paid_after_a_plain_refund_does_not_restore_access(monthly, now):
    checkout = create_checkout(plan=monthly, customer_name="Ana", customer_email="ana@example.com", now=now)
    sub = activate_checkout(checkout=checkout, now=now)
    checkout.refresh_from_db()
    apply_charge(checkout=checkout, charge=charge(checkout, ChargeStatus.REFUNDED, "refunded"), now=now + DAY)

    checkout.refresh_from_db()
    outcome, _note = apply_charge(checkout=checkout, charge=charge(checkout, ChargeStatus.PAID, "paid"), now=now + 2 * DAY)

    sub.refresh_from_db()
    assert outcome == "ignored" and sub.status == Subscription.Status.REFUNDED


@responses.activate
def test_a_refund_found_only_by_reconciliation_revokes_access(settings, now):
    # given: paid here, refunded at JunglePay (the refund's postback was lost)
    settings.JUNGLEPAY_API_URL = JP
    jp = junglepay()
    checkout = jp_checkout(jp, transaction_id="282")
    sub = activate_checkout(checkout=checkout, now=now)
    refunded = transaction(checkout, status="refunded")
    responses.upsert(responses.GET, f"{JP}/transactions", json={"data": [refunded], "pagination": {"page": 1, "totalPages": 1}})
    responses.get(f"{JP}/transactions/282", json=refunded)

    [report] = reconcile_payments()

    assert report.fixed == 1
    checkout.refresh_from_db()
    sub.refresh_from_db()
    assert checkout.status == Checkout.Status.REFUNDED and sub.status == Subscription.Status.REFUNDED
    assert ReconciliationItem.objects.get().kind == ReconciliationItem.Kind.MISSED_REFUND
