from datetime import timedelta

import pytest

from billing.exceptions import TransitionNotAllowed
from billing.models import Checkout, Subscription
from billing.services import (
    activate_subscription,
    anonymous_email,
    cancel_subscription,
    cancel_subscription_now,
    erase_customer_data,
    expire_subscription,
    extend_subscription,
    sweep_subscriptions,
)
from tests.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db


def _access(sub, at):
    return Subscription.objects.granting_access(at).filter(pk=sub.pk).exists()


def test_cancel_at_period_end_keeps_access_until_end_date_then_ends_without_a_renewal_charge(now):
    # given
    end = now + timedelta(days=10)
    sub = SubscriptionFactory(start_date=end - timedelta(days=30), end_date=end)

    # when
    cancel_subscription(subscription=sub, reason="Too expensive", now=now)

    # then: access until end_date, no renewal issued in the notice window
    sub.refresh_from_db()
    assert sub.cancel_at_period_end and sub.cancel_reason == "Too expensive"
    assert sub.last_reason == Subscription.Reason.CANCELED_BY_USER
    sweep_subscriptions(now=end - timedelta(days=1))
    assert not Checkout.objects.filter(purpose=Checkout.Purpose.RENEWAL).exists()
    assert _access(sub, end - timedelta(seconds=1))
    assert not _access(sub, end)

    sweep_subscriptions(now=end + timedelta(minutes=1))
    sub.refresh_from_db()
    assert sub.status == Subscription.Status.CANCELED
    assert sub.last_reason == Subscription.Reason.CANCELED_BY_USER
    assert not Checkout.objects.filter(purpose=Checkout.Purpose.RENEWAL).exists()


def test_cancel_after_the_renewal_was_issued_voids_that_charge(now):
    sub = SubscriptionFactory(start_date=now - timedelta(days=28), end_date=now + timedelta(days=2))
    sweep_subscriptions(now=now)
    renewal = Checkout.objects.get(purpose=Checkout.Purpose.RENEWAL)

    cancel_subscription(subscription=sub, now=now)

    renewal.refresh_from_db()
    assert renewal.status == Checkout.Status.CANCELED


def test_cancel_twice_keeps_the_first_reason(now):
    sub = SubscriptionFactory()
    cancel_subscription(subscription=sub, reason="first", now=now)
    cancel_subscription(subscription=sub, reason="second", now=now + timedelta(hours=1))
    sub.refresh_from_db()
    assert sub.cancel_reason == "first" and sub.canceled_at == now


def test_admin_cancel_revokes_access_now(now):
    sub = SubscriptionFactory(start_date=now - timedelta(days=1), end_date=now + timedelta(days=29))
    cancel_subscription_now(subscription=sub, now=now)
    sub.refresh_from_db()
    assert sub.status == Subscription.Status.CANCELED
    assert sub.last_reason == Subscription.Reason.CANCELED_BY_ADMIN
    assert not _access(sub, now)


def test_admin_expire_extend_and_activate(now):
    sub = SubscriptionFactory(start_date=now - timedelta(days=29), end_date=now + timedelta(days=1))
    extend_subscription(subscription=sub, days=7, now=now)
    sub.refresh_from_db()
    assert sub.end_date == now + timedelta(days=8)
    assert sub.last_reason == Subscription.Reason.EXTENDED_BY_ADMIN

    expire_subscription(subscription=sub, now=now)
    sub.refresh_from_db()
    assert sub.status == Subscription.Status.EXPIRED and not _access(sub, now)

    activate_subscription(subscription=sub, now=now)
    sub.refresh_from_db()
    assert sub.status == Subscription.Status.ACTIVE
    assert sub.end_date == now + timedelta(days=sub.plan.duration_days)
    assert sub.last_reason == Subscription.Reason.ACTIVATED_BY_ADMIN


def test_admin_activate_refuses_a_second_live_subscription(now):
    live = SubscriptionFactory()
    old = SubscriptionFactory(user=live.user, status=Subscription.Status.EXPIRED)
    with pytest.raises(TransitionNotAllowed):
        activate_subscription(subscription=old, now=now)


def test_admin_activate_gives_no_days_to_a_deleted_account(now):
    # given: a subscription the account's deletion ended (contract §9.8; found by the money machine)
    sub = SubscriptionFactory()
    erase_customer_data(user=sub.user, now=now)
    sub.user.email = anonymous_email(sub.user.pk)
    sub.user.save(update_fields=["email"])

    # when / then: the admin's activation is refused and grants nothing
    with pytest.raises(TransitionNotAllowed):
        activate_subscription(subscription=sub, now=now + timedelta(hours=1))
    sub.refresh_from_db()
    assert sub.status == Subscription.Status.CANCELED
    assert not _access(sub, now + timedelta(hours=1))


def test_extend_brings_a_past_due_subscription_back_to_active(now):
    sub = SubscriptionFactory(start_date=now - timedelta(days=31), end_date=now - timedelta(days=1), status=Subscription.Status.PAST_DUE)
    extend_subscription(subscription=sub, days=5, now=now)
    sub.refresh_from_db()
    assert sub.status == Subscription.Status.ACTIVE


def test_user_cancel_needs_a_live_subscription(now):
    sub = SubscriptionFactory(status=Subscription.Status.EXPIRED)
    with pytest.raises(TransitionNotAllowed):
        cancel_subscription(subscription=sub, now=now)
