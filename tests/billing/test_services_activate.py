from datetime import timedelta

import pytest
from django.core import mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from billing.models import Checkout, Subscription
from billing.services import activate_checkout, create_checkout, fail_checkout
from tests.factories import PlanFactory, SubscriptionFactory, UserFactory

pytestmark = pytest.mark.django_db
NOW = timezone.now().replace(microsecond=0)


def _new_checkout(plan, email="ana@example.com", **kwargs):
    return create_checkout(plan=plan, customer_name="Ana", customer_email=email, now=NOW, **kwargs)


def test_a_paid_checkout_creates_the_account_and_an_active_subscription(django_capture_on_commit_callbacks):
    plan = PlanFactory(duration_days=30)
    checkout = _new_checkout(plan)

    with django_capture_on_commit_callbacks(execute=True):
        sub = activate_checkout(checkout=checkout, now=NOW)

    user = User.objects.get(email="ana@example.com")
    assert sub.user == user and sub.status == Subscription.Status.ACTIVE
    assert (sub.start_date, sub.end_date) == (NOW, NOW + timedelta(days=30))
    assert sub.last_reason == Subscription.Reason.PAID
    checkout.refresh_from_db()
    assert checkout.status == Checkout.Status.PAID and checkout.paid_at == NOW and checkout.user == user
    assert not checkout.is_late
    # The set-password e-mail for the new account, and the payment's receipt.
    assert sorted(message.subject.split(":")[0] for message in mail.outbox) == ["Recibo", "Sua conta CreatorFlix"]
    assert Subscription.objects.granting_access(NOW).filter(user=user).exists()


def test_duplicate_activation_changes_nothing():
    checkout = _new_checkout(PlanFactory())
    first = activate_checkout(checkout=checkout, now=NOW)

    again = activate_checkout(checkout=checkout, now=NOW + timedelta(hours=5))

    assert again.pk == first.pk
    again.refresh_from_db()
    assert again.end_date == first.end_date
    assert Subscription.objects.count() == 1


def test_it_activates_the_pending_subscription_of_a_known_user():
    user = UserFactory()
    checkout = _new_checkout(PlanFactory(), user=user, email=user.email)
    pending = checkout.subscription

    sub = activate_checkout(checkout=checkout, now=NOW)

    assert sub.pk == pending.pk and sub.status == Subscription.Status.ACTIVE


def _renewal_for(sub):
    return create_checkout(
        plan=sub.plan, customer_name="Ana", customer_email=sub.user.email, user=sub.user,
        purpose=Checkout.Purpose.RENEWAL, subscription=sub, now=NOW,
    )


def test_early_renewal_extends_from_the_current_end_date():
    end = NOW + timedelta(days=2)
    sub = SubscriptionFactory(start_date=end - timedelta(days=30), end_date=end)

    renewed = activate_checkout(checkout=_renewal_for(sub), now=NOW)

    assert renewed.pk == sub.pk
    assert renewed.end_date == end + timedelta(days=30)
    assert renewed.last_reason == Subscription.Reason.RENEWED


def test_renewal_paid_during_grace_extends_from_the_old_end_date():
    end = NOW - timedelta(days=2)
    sub = SubscriptionFactory(start_date=end - timedelta(days=30), end_date=end, status=Subscription.Status.PAST_DUE)

    renewed = activate_checkout(checkout=_renewal_for(sub), now=NOW)

    assert renewed.status == Subscription.Status.ACTIVE
    assert renewed.end_date == end + timedelta(days=30)


def test_a_renewal_paid_after_expiry_opens_a_new_period_flagged_late():
    end = NOW - timedelta(days=20)
    sub = SubscriptionFactory(start_date=end - timedelta(days=30), end_date=end, status=Subscription.Status.EXPIRED)
    checkout = _renewal_for(sub)

    renewed = activate_checkout(checkout=checkout, now=NOW)

    assert renewed.status == Subscription.Status.ACTIVE
    assert (renewed.start_date, renewed.end_date) == (NOW, NOW + timedelta(days=30))
    checkout.refresh_from_db()
    assert checkout.is_late


def test_a_payment_after_the_charge_expired_still_activates_and_is_flagged_late():
    user = UserFactory()
    checkout = _new_checkout(PlanFactory(), user=user, email=user.email)
    fail_checkout(checkout=checkout, status=Checkout.Status.EXPIRED, now=NOW)
    checkout.refresh_from_db()
    assert checkout.subscription.status == Subscription.Status.EXPIRED

    sub = activate_checkout(checkout=checkout, now=NOW + timedelta(days=2))

    checkout.refresh_from_db()
    assert checkout.status == Checkout.Status.PAID and checkout.is_late
    assert sub.status == Subscription.Status.ACTIVE
    assert sub.start_date == NOW + timedelta(days=2)


def test_a_new_purchase_by_a_subscriber_extends_the_live_subscription():
    sub = SubscriptionFactory(start_date=NOW - timedelta(days=10), end_date=NOW + timedelta(days=20))
    checkout = _new_checkout(sub.plan, email=sub.user.email)

    extended = activate_checkout(checkout=checkout, now=NOW)

    assert extended.pk == sub.pk
    assert extended.end_date == NOW + timedelta(days=50)
    assert Subscription.objects.live().filter(user=sub.user).count() == 1


def test_the_database_rejects_two_live_subscriptions_for_one_user():
    sub = SubscriptionFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        SubscriptionFactory(user=sub.user, status=Subscription.Status.PAST_DUE)
