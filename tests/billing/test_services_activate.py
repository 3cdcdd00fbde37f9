from datetime import timedelta

import pytest
from django.core import mail
from django.db import IntegrityError, transaction

from accounts.models import User
from billing.gateways import ChargeStatus
from billing.models import Checkout, Subscription
from billing.services import (
    ProcessingError,
    activate_checkout,
    apply_charge,
    create_checkout,
    fail_checkout,
)
from tests.billing.paymentkit import charge
from tests.factories import PlanFactory, SubscriptionFactory, UserFactory

pytestmark = pytest.mark.django_db


def _new_checkout(plan, email="ana@example.com", *, now, **kwargs):
    return create_checkout(plan=plan, customer_name="Ana", customer_email=email, now=now, **kwargs)


def test_a_paid_checkout_creates_the_account_and_an_active_subscription(django_capture_on_commit_callbacks, now):
    plan = PlanFactory(duration_days=30)
    checkout = _new_checkout(plan, now=now)

    with django_capture_on_commit_callbacks(execute=True):
        sub = activate_checkout(checkout=checkout, now=now)

    user = User.objects.get(email="ana@example.com")
    assert sub.user == user and sub.status == Subscription.Status.ACTIVE
    assert (sub.start_date, sub.end_date) == (now, now + timedelta(days=30))
    assert sub.last_reason == Subscription.Reason.PAID
    checkout.refresh_from_db()
    assert checkout.status == Checkout.Status.PAID and checkout.paid_at == now and checkout.user == user
    assert not checkout.is_late
    # The set-password e-mail for the new account, and the payment's receipt.
    assert sorted(message.subject.split(":")[0] for message in mail.outbox) == ["Recibo", "Sua conta CreatorFlix"]
    assert Subscription.objects.granting_access(now).filter(user=user).exists()


def test_duplicate_activation_changes_nothing(now):
    checkout = _new_checkout(PlanFactory(), now=now)
    first = activate_checkout(checkout=checkout, now=now)

    again = activate_checkout(checkout=checkout, now=now + timedelta(hours=5))

    assert again.pk == first.pk
    again.refresh_from_db()
    assert again.end_date == first.end_date
    assert Subscription.objects.count() == 1


def test_it_activates_the_pending_subscription_of_a_known_user(now):
    user = UserFactory()
    checkout = _new_checkout(PlanFactory(), user=user, email=user.email, now=now)
    pending = checkout.subscription

    sub = activate_checkout(checkout=checkout, now=now)

    assert sub.pk == pending.pk and sub.status == Subscription.Status.ACTIVE


def _renewal_for(sub, *, now):
    return create_checkout(
        plan=sub.plan, customer_name="Ana", customer_email=sub.user.email, user=sub.user,
        purpose=Checkout.Purpose.RENEWAL, subscription=sub, now=now,
    )


def test_early_renewal_extends_from_the_current_end_date(now):
    end = now + timedelta(days=2)
    sub = SubscriptionFactory(start_date=end - timedelta(days=30), end_date=end)

    renewed = activate_checkout(checkout=_renewal_for(sub, now=now), now=now)

    assert renewed.pk == sub.pk
    assert renewed.end_date == end + timedelta(days=30)
    assert renewed.last_reason == Subscription.Reason.RENEWED


def test_renewal_paid_during_grace_extends_from_the_old_end_date(now):
    end = now - timedelta(days=2)
    sub = SubscriptionFactory(start_date=end - timedelta(days=30), end_date=end, status=Subscription.Status.PAST_DUE)

    renewed = activate_checkout(checkout=_renewal_for(sub, now=now), now=now)

    assert renewed.status == Subscription.Status.ACTIVE
    assert renewed.end_date == end + timedelta(days=30)


def test_a_renewal_paid_after_expiry_opens_a_new_period_flagged_late(now):
    end = now - timedelta(days=20)
    sub = SubscriptionFactory(start_date=end - timedelta(days=30), end_date=end, status=Subscription.Status.EXPIRED)
    checkout = _renewal_for(sub, now=now)

    renewed = activate_checkout(checkout=checkout, now=now)

    assert renewed.status == Subscription.Status.ACTIVE
    assert (renewed.start_date, renewed.end_date) == (now, now + timedelta(days=30))
    checkout.refresh_from_db()
    assert checkout.is_late


def test_a_payment_after_the_charge_expired_still_activates_and_is_flagged_late(now):
    user = UserFactory()
    checkout = _new_checkout(PlanFactory(), user=user, email=user.email, now=now)
    fail_checkout(checkout=checkout, status=Checkout.Status.EXPIRED, now=now)
    checkout.refresh_from_db()
    assert checkout.subscription.status == Subscription.Status.EXPIRED

    sub = activate_checkout(checkout=checkout, now=now + timedelta(days=2))

    checkout.refresh_from_db()
    assert checkout.status == Checkout.Status.PAID and checkout.is_late
    assert sub.status == Subscription.Status.ACTIVE
    assert sub.start_date == now + timedelta(days=2)


def test_a_new_purchase_by_a_subscriber_extends_the_live_subscription(now):
    sub = SubscriptionFactory(start_date=now - timedelta(days=10), end_date=now + timedelta(days=20))
    checkout = _new_checkout(sub.plan, email=sub.user.email, now=now)

    extended = activate_checkout(checkout=checkout, now=now)

    assert extended.pk == sub.pk
    assert extended.end_date == now + timedelta(days=50)
    assert Subscription.objects.live().filter(user=sub.user).count() == 1


def test_the_database_rejects_two_live_subscriptions_for_one_user():
    sub = SubscriptionFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        SubscriptionFactory(user=sub.user, status=Subscription.Status.PAST_DUE)


DAY = timedelta(days=1)


def test_editing_a_plans_duration_leaves_what_a_created_checkout_grants(monthly, now):
    checkout = create_checkout(plan=monthly, customer_name="Ana", customer_email="ana@example.com", now=now)
    assert checkout.plan_duration_days == 30

    monthly.duration_days = 7
    monthly.save()
    sub = activate_checkout(checkout=checkout, now=now)

    assert sub.end_date == now + 30 * DAY


def test_a_payment_applied_two_days_late_grants_the_whole_period(monthly, now):
    checkout = create_checkout(plan=monthly, customer_name="Ana", customer_email="ana@example.com", now=now - 2 * DAY)

    sub = activate_checkout(checkout=checkout, paid_at=now - 2 * DAY, now=now)

    assert (sub.start_date, sub.end_date) == (now, now + 30 * DAY)
    checkout.refresh_from_db()
    assert checkout.paid_at == now - 2 * DAY  # the gateway's time is kept


def test_a_fetched_charge_without_an_amount_never_activates(monthly, now):
    checkout = create_checkout(plan=monthly, customer_name="Ana", customer_email="ana@example.com", now=now)

    with pytest.raises(ProcessingError):
        apply_charge(checkout=checkout, charge=charge(checkout, ChargeStatus.PAID, "paid", amount=None), now=now)

    checkout.refresh_from_db()
    assert checkout.status == Checkout.Status.PENDING
    assert not Subscription.objects.live().exists()
