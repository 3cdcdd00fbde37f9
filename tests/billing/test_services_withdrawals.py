"""
Withdrawal (billing.services.withdraw_subscription) meeting other money: a renewal paid after
the buyer withdrew is listed for a person, never a revival; a second withdrawal never trips
over a refund already requested.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from billing import selectors
from billing.access import user_has_access
from billing.audit import run_audit
from billing.exceptions import TransitionNotAllowed
from billing.gateways.junglepay import charge_from_transaction
from billing.models import Checkout, ReconciliationItem, RefundRequest, Subscription
from billing.services import (
    activate_checkout,
    activate_subscription,
    apply_charge,
    complete_refund_request,
    create_checkout,
    settle_free_checkout,
    sweep_subscriptions,
    withdraw_subscription,
)
from tests.billing.paymentkit import jp_checkout, transaction
from tests.factories import PlanFactory, UserFactory

pytestmark = pytest.mark.django_db


def _subscribed_with_renewal(jp, *, now):
    """A first payment today, and the renewal charge of its period issued (a PIX the buyer still holds)."""
    user = UserFactory()
    first = jp_checkout(jp, user=user, customer_email=user.email, transaction_id="281")
    subscription = activate_checkout(checkout=first, now=now)
    renewal = create_checkout(
        plan=subscription.plan, customer_name="Ana", customer_email=user.email, user=user,
        purpose=Checkout.Purpose.RENEWAL, subscription=subscription, now=now,
    )
    Checkout.objects.filter(pk=renewal.pk).update(gateway=jp, gateway_transaction_id="282")
    return subscription, first, Checkout.objects.get(pk=renewal.pk)


def test_a_renewal_paid_after_a_withdrawal_is_listed_for_a_person_and_never_revives_the_subscription(jp):
    # given: the buyer withdrew (refund pending at JunglePay), the renewal's PIX voided
    now = timezone.now()
    subscription, first, renewal = _subscribed_with_renewal(jp, now=now)
    withdraw_subscription(subscription=subscription, now=now)

    # when: the voided renewal PIX is paid anyway, and the withdrawal's refund is then completed
    charge = charge_from_transaction(transaction(renewal, status="paid", externalRef=str(renewal.public_id)))
    apply_charge(checkout=renewal, charge=charge, now=now + timedelta(hours=1))
    complete_refund_request(refund_request=RefundRequest.objects.get(checkout=first), now=now + timedelta(hours=2))

    # then: still withdrawn, no access; the renewal's money is listed for a person
    subscription.refresh_from_db()
    assert (subscription.status, subscription.last_reason) == ("refunded", "withdrawn")
    assert not user_has_access(subscription.user)
    renewal.refresh_from_db()
    assert renewal.status == Checkout.Status.PAID and renewal.subscription is None
    item = ReconciliationItem.objects.get(kind=ReconciliationItem.Kind.VOIDED_CHARGE_PAID)
    assert (item.checkout, item.amount_cents) == (renewal, renewal.total_cents)
    assert run_audit(now=now + timedelta(days=11)).violations == []  # contract §9 holds after it

def test_a_second_withdrawal_never_asks_again_for_a_refund_already_requested(jp):
    # given: a withdrawal whose refund is still pending, then the admin gives the subscription back
    now = timezone.now()
    subscription, first, _renewal = _subscribed_with_renewal(jp, now=now)
    withdraw_subscription(subscription=subscription, now=now)
    staff = UserFactory(is_staff=True)
    activate_subscription(subscription=subscription, reason="customer asked to come back", actor=staff, now=now + timedelta(hours=1))

    # when: the buyer withdraws again, inside the window
    withdrawal = withdraw_subscription(subscription=subscription, now=now + timedelta(hours=2))

    # then: access ends; the one refund request of the first payment stands, no second one, no error
    assert (withdrawal.subscription.status, withdrawal.subscription.last_reason) == ("refunded", "withdrawn")
    assert list(RefundRequest.objects.values_list("checkout_id", flat=True)) == [first.pk]
    assert withdrawal.amount_cents == first.total_cents
    assert run_audit(now=now + timedelta(days=11)).violations == []  # contract §9 holds after it

def _trial_then_first_charge(*, now, paid_on_day):
    """A 7-day free trial from `now`, its first charge (R$ 29,90) paid on `paid_on_day`."""
    plan = PlanFactory(price_cents=2990, duration_days=30, trial_days=7)
    user = UserFactory()
    trial = create_checkout(plan=plan, customer_name="Ana", customer_email=user.email, user=user, trial=True, now=now)
    settle_free_checkout(checkout=trial, now=now)
    sweep_subscriptions(now=now + timedelta(days=paid_on_day) - timedelta(seconds=1))
    first_charge = Checkout.objects.get(purpose=Checkout.Purpose.RENEWAL)
    return activate_checkout(checkout=first_charge, now=now + timedelta(days=paid_on_day)), first_charge


def test_after_a_free_trial_the_withdrawal_window_opens_at_the_first_payment_above_zero(settings):
    # given: a trial started on day 0, its first charge paid on day 6
    settings.WITHDRAWAL_DAYS = 7
    now = timezone.now()
    subscription, first_charge = _trial_then_first_charge(now=now, paid_on_day=6)

    # when: the buyer withdraws on day 10 (four days after paying, ten after the R$ 0 trial)
    withdrawal = withdraw_subscription(subscription=subscription, now=now + timedelta(days=10))

    # then: inside the window; what was paid is refunded
    assert withdrawal.amount_cents == 2990
    assert [r.checkout_id for r in withdrawal.refunds] == [first_charge.pk]
    assert run_audit(now=now + timedelta(days=11)).violations == []  # contract §9 holds after it

def test_a_free_trial_alone_opens_no_withdrawal_window(settings):
    plan = PlanFactory(price_cents=2990, trial_days=7)
    user = UserFactory()
    now = timezone.now()
    trial = create_checkout(plan=plan, customer_name="Ana", customer_email=user.email, user=user, trial=True, now=now)
    settle_free_checkout(checkout=trial, now=now)
    subscription = Subscription.objects.get(user=user)

    assert selectors.withdrawal_closes_at(subscription=subscription) is None
    with pytest.raises(TransitionNotAllowed) as error:
        withdraw_subscription(subscription=subscription, now=now + timedelta(days=1))
    assert error.value.code == "nothing_to_refund"
