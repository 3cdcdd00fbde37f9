from datetime import timedelta

import pytest
from django.utils import timezone

from billing.exceptions import TransitionNotAllowed
from billing.models import Checkout, Subscription
from billing.services import activate_checkout, create_checkout, fail_checkout, refund_checkout
from tests.factories import PlanFactory, UserFactory

pytestmark = pytest.mark.django_db
NOW = timezone.now().replace(microsecond=0)


def _paid_checkout():
    checkout = create_checkout(plan=PlanFactory(), customer_name="Ana", customer_email="ana@example.com", now=NOW)
    activate_checkout(checkout=checkout, now=NOW)
    checkout.refresh_from_db()
    return checkout


def test_refund_revokes_access_at_once():
    checkout = _paid_checkout()
    user = checkout.user
    assert Subscription.objects.granting_access(NOW).filter(user=user).exists()

    refund_checkout(checkout=checkout, now=NOW + timedelta(days=1))

    checkout.refresh_from_db()
    sub = checkout.subscription
    assert checkout.status == Checkout.Status.REFUNDED
    assert sub.status == Subscription.Status.REFUNDED and sub.last_reason == Subscription.Reason.REFUNDED
    assert not Subscription.objects.granting_access(NOW + timedelta(days=1)).filter(user=user).exists()


def test_refund_twice_changes_nothing_the_second_time():
    checkout = _paid_checkout()
    refund_checkout(checkout=checkout, now=NOW)
    sub_before = Subscription.objects.get(pk=checkout.subscription_id)

    refund_checkout(checkout=checkout, now=NOW + timedelta(days=3))

    sub_after = Subscription.objects.get(pk=checkout.subscription_id)
    assert sub_after.last_transition_at == sub_before.last_transition_at


def test_a_pending_checkout_cannot_be_refunded():
    checkout = create_checkout(plan=PlanFactory(), customer_name="Ana", customer_email="ana@example.com")
    with pytest.raises(TransitionNotAllowed):
        refund_checkout(checkout=checkout)


def test_a_refunded_checkout_cannot_be_activated_again():
    checkout = _paid_checkout()
    refund_checkout(checkout=checkout, now=NOW)
    with pytest.raises(TransitionNotAllowed):
        activate_checkout(checkout=checkout, now=NOW)


def test_an_expired_first_charge_ends_its_pending_subscription_as_never_paid():
    user = UserFactory()
    checkout = create_checkout(plan=PlanFactory(), customer_name="Ana", customer_email=user.email, user=user)

    fail_checkout(checkout=checkout, status=Checkout.Status.EXPIRED, now=NOW)

    checkout.refresh_from_db()
    assert checkout.status == Checkout.Status.EXPIRED
    assert checkout.subscription.status == Subscription.Status.EXPIRED
    assert checkout.subscription.last_reason == Subscription.Reason.NEVER_PAID


def test_fail_never_moves_a_paid_checkout():
    checkout = _paid_checkout()
    fail_checkout(checkout=checkout, status=Checkout.Status.FAILED, now=NOW)
    checkout.refresh_from_db()
    assert checkout.status == Checkout.Status.PAID
    assert checkout.subscription.status == Subscription.Status.ACTIVE


def test_fail_is_idempotent():
    checkout = create_checkout(plan=PlanFactory(), customer_name="Ana", customer_email="ana@example.com")
    fail_checkout(checkout=checkout, status=Checkout.Status.CANCELED, now=NOW)
    fail_checkout(checkout=checkout, status=Checkout.Status.EXPIRED, now=NOW)
    checkout.refresh_from_db()
    assert checkout.status == Checkout.Status.CANCELED
