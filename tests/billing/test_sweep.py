from datetime import timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing.models import Checkout, Subscription
from billing.services import activate_checkout, create_checkout, sweep_subscriptions
from tests.concurrency import race
from tests.factories import CheckoutFactory, SubscriptionFactory, UserFactory

NOW = timezone.now().replace(microsecond=0)


def _sub(days_left, **kwargs):
    end = NOW + timedelta(days=days_left)
    return SubscriptionFactory(start_date=end - timedelta(days=30), end_date=end, **kwargs)


@pytest.mark.django_db
def test_it_issues_a_renewal_notice_days_before_end_and_emails_its_link(settings, django_capture_on_commit_callbacks):
    settings.RENEWAL_NOTICE_DAYS = 3
    due = _sub(2)
    not_yet = _sub(10)

    with django_capture_on_commit_callbacks(execute=True):
        result = sweep_subscriptions(now=NOW)

    assert result.renewals_issued == 1
    renewal = Checkout.objects.get(purpose=Checkout.Purpose.RENEWAL)
    assert renewal.subscription == due and renewal.user == due.user
    assert renewal.status == Checkout.Status.PENDING and renewal.total_cents == due.plan.price_cents
    assert sum(i["unit_price_cents"] for i in renewal.items) == renewal.total_cents
    assert not not_yet.checkouts.exists()
    assert len(mail.outbox) == 1 and mail.outbox[0].to == [due.user.email]
    assert f"/checkout/pay/{renewal.public_id}/" in mail.outbox[0].body  # the payments page of that checkout


@pytest.mark.django_db
def test_a_second_sweep_issues_nothing_more():
    _sub(1)
    sweep_subscriptions(now=NOW)
    result = sweep_subscriptions(now=NOW + timedelta(minutes=5))
    assert result.renewals_issued == 0
    assert Checkout.objects.filter(purpose=Checkout.Purpose.RENEWAL).count() == 1


@pytest.mark.django_db
def test_the_next_period_gets_its_own_renewal_once_paid():
    sub = _sub(1)
    sweep_subscriptions(now=NOW)
    activate_checkout(checkout=Checkout.objects.get(purpose=Checkout.Purpose.RENEWAL), now=NOW)
    sub.refresh_from_db()

    sweep_subscriptions(now=sub.end_date - timedelta(days=1))

    assert Checkout.objects.filter(purpose=Checkout.Purpose.RENEWAL, status=Checkout.Status.PENDING).count() == 1


@pytest.mark.django_db
def test_grace_then_expiry(settings):
    settings.SUBSCRIPTION_GRACE_DAYS = 3
    sub = _sub(0)  # ends now
    sweep_subscriptions(now=NOW + timedelta(hours=1))
    sub.refresh_from_db()
    assert sub.status == Subscription.Status.PAST_DUE and sub.last_reason == Subscription.Reason.GRACE_STARTED
    assert Subscription.objects.granting_access(NOW + timedelta(days=2)).filter(pk=sub.pk).exists()

    result = sweep_subscriptions(now=NOW + timedelta(days=3, minutes=1))

    sub.refresh_from_db()
    assert sub.status == Subscription.Status.EXPIRED and sub.last_reason == Subscription.Reason.EXPIRED
    assert result.expired == 1
    renewal = Checkout.objects.get(purpose=Checkout.Purpose.RENEWAL)
    assert renewal.status == Checkout.Status.EXPIRED  # closed, though a late payment still counts


@pytest.mark.django_db
def test_it_expires_stale_first_checkouts_and_their_pending_subscriptions():
    user = UserFactory()
    old = create_checkout(plan=_sub(20).plan, customer_name="A", customer_email=user.email, user=user, now=NOW - timedelta(days=2))
    pix_gone = CheckoutFactory(pix_expires_at=NOW - timedelta(minutes=1))
    fresh = CheckoutFactory(pix_expires_at=NOW + timedelta(minutes=30))

    result = sweep_subscriptions(now=NOW)

    assert result.checkouts_expired == 2 and result.never_paid == 1
    for checkout, status in ((old, "expired"), (pix_gone, "expired"), (fresh, "pending")):
        checkout.refresh_from_db()
        assert checkout.status == status
    assert old.subscription.status == Subscription.Status.EXPIRED
    assert old.subscription.last_reason == Subscription.Reason.NEVER_PAID


@pytest.mark.django_db
def test_its_query_count_does_not_grow_with_the_rows(django_assert_max_num_queries):
    for days in (1, 2, 0, -1, -5):
        _sub(days)
    with CaptureQueriesContext(connection) as few:
        sweep_subscriptions(now=NOW)
    for days in (1, 2, 0, -1, -5) * 6:
        _sub(days)
    with CaptureQueriesContext(connection) as many:
        sweep_subscriptions(now=NOW + timedelta(minutes=1))
    assert len(many) == len(few)
    with django_assert_max_num_queries(len(few)):
        sweep_subscriptions(now=NOW + timedelta(minutes=2))


@pytest.mark.django_db
def test_the_command_prints_progress_and_a_summary(capsys):
    _sub(1)
    call_command("sweep_subscriptions")
    out = capsys.readouterr().out
    assert "renewals issued 1" in out
    assert out.strip().splitlines()[-1].startswith("Swept")


@pytest.mark.django_db
def test_the_celery_task_runs_the_sweep():
    from billing.tasks import sweep_subscriptions as task

    _sub(1)
    summary = task.apply().get()
    assert summary["renewals_issued"] == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_issue_one_renewal():
    subs = [_sub(1) for _ in range(20)]
    results = []

    errors = race(lambda: results.append(sweep_subscriptions(now=NOW)), lambda: results.append(sweep_subscriptions(now=NOW)))

    assert not errors
    assert sum(r.renewals_issued for r in results) == len(subs)
    for sub in subs:
        assert Checkout.objects.filter(subscription=sub, purpose=Checkout.Purpose.RENEWAL).count() == 1


@pytest.mark.django_db
def test_a_failed_renewal_charge_gets_a_fresh_one_at_the_next_sweep():
    from billing.services import fail_checkout

    sub = _sub(2)
    sweep_subscriptions(now=NOW)
    first = Checkout.objects.get(purpose=Checkout.Purpose.RENEWAL)
    fail_checkout(checkout=first, status=Checkout.Status.EXPIRED, now=NOW)

    result = sweep_subscriptions(now=NOW + timedelta(minutes=5))

    assert result.renewals_issued == 1
    fresh = Checkout.objects.get(purpose=Checkout.Purpose.RENEWAL, status=Checkout.Status.PENDING)
    assert fresh.pk != first.pk and fresh.subscription == sub


@pytest.mark.django_db
def test_an_admin_extension_keeps_the_open_renewal_charge():
    from billing.services import extend_subscription

    sub = _sub(2)
    sweep_subscriptions(now=NOW)
    extend_subscription(subscription=sub, days=1, now=NOW)

    result = sweep_subscriptions(now=NOW + timedelta(minutes=5))

    assert result.renewals_issued == 0
    assert Checkout.objects.filter(purpose=Checkout.Purpose.RENEWAL, status=Checkout.Status.PENDING).count() == 1
