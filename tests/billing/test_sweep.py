from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import responses
import time_machine
from django.core import mail
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing.models import (
    Checkout,
    Subscription,
)
from billing.services import (
    activate_checkout,
    create_checkout,
    issue_pix_charge,
    sweep_subscriptions,
)
from tests.billing.paymentkit import (
    JP,
    jp_answer,
)
from tests.concurrency import race
from tests.factories import CheckoutFactory, PlanFactory, SubscriptionFactory, UserFactory


def _sub(days_left, *, now, **kwargs):
    end = now + timedelta(days=days_left)
    return SubscriptionFactory(start_date=end - timedelta(days=30), end_date=end, **kwargs)


@pytest.mark.django_db
def test_it_issues_a_renewal_notice_days_before_end_and_emails_its_link(settings, django_capture_on_commit_callbacks, now):
    settings.RENEWAL_NOTICE_DAYS = 3
    due = _sub(2, now=now)
    not_yet = _sub(10, now=now)

    with django_capture_on_commit_callbacks(execute=True):
        result = sweep_subscriptions(now=now)

    assert result.renewals_issued == 1
    renewal = Checkout.objects.get(purpose=Checkout.Purpose.RENEWAL)
    assert renewal.subscription == due and renewal.user == due.user
    assert renewal.status == Checkout.Status.PENDING and renewal.total_cents == due.plan.price_cents
    assert sum(i["unit_price_cents"] for i in renewal.items) == renewal.total_cents
    assert not not_yet.checkouts.exists()
    assert len(mail.outbox) == 1 and mail.outbox[0].to == [due.user.email]
    assert f"/checkout/pay/{renewal.public_id}/" in mail.outbox[0].body  # the payments page of that checkout


@pytest.mark.django_db
def test_a_second_sweep_issues_nothing_more(now):
    _sub(1, now=now)
    sweep_subscriptions(now=now)
    result = sweep_subscriptions(now=now + timedelta(minutes=5))
    assert result.renewals_issued == 0
    assert Checkout.objects.filter(purpose=Checkout.Purpose.RENEWAL).count() == 1


@pytest.mark.django_db
def test_the_next_period_gets_its_own_renewal_once_paid(now):
    sub = _sub(1, now=now)
    sweep_subscriptions(now=now)
    activate_checkout(checkout=Checkout.objects.get(purpose=Checkout.Purpose.RENEWAL), now=now)
    sub.refresh_from_db()

    sweep_subscriptions(now=sub.end_date - timedelta(days=1))

    assert Checkout.objects.filter(purpose=Checkout.Purpose.RENEWAL, status=Checkout.Status.PENDING).count() == 1


@pytest.mark.django_db
def test_grace_then_expiry(settings, now):
    settings.SUBSCRIPTION_GRACE_DAYS = 3
    sub = _sub(0, now=now)  # ends now
    sweep_subscriptions(now=now + timedelta(hours=1))
    sub.refresh_from_db()
    assert sub.status == Subscription.Status.PAST_DUE and sub.last_reason == Subscription.Reason.GRACE_STARTED
    assert Subscription.objects.granting_access(now + timedelta(days=2)).filter(pk=sub.pk).exists()

    result = sweep_subscriptions(now=now + timedelta(days=3, minutes=1))

    sub.refresh_from_db()
    assert sub.status == Subscription.Status.EXPIRED and sub.last_reason == Subscription.Reason.EXPIRED
    assert result.expired == 1
    renewal = Checkout.objects.get(purpose=Checkout.Purpose.RENEWAL)
    assert renewal.status == Checkout.Status.EXPIRED  # closed, though a late payment still counts


@pytest.mark.django_db
def test_it_expires_stale_first_checkouts_and_their_pending_subscriptions(now):
    user = UserFactory()
    old = create_checkout(plan=_sub(20, now=now).plan, customer_name="A", customer_email=user.email, user=user, now=now - timedelta(days=2))
    pix_gone = CheckoutFactory(pix_expires_at=now - timedelta(minutes=1))
    fresh = CheckoutFactory(pix_expires_at=now + timedelta(minutes=30))

    result = sweep_subscriptions(now=now)

    assert result.checkouts_expired == 2 and result.never_paid == 1
    for checkout, status in ((old, "expired"), (pix_gone, "expired"), (fresh, "pending")):
        checkout.refresh_from_db()
        assert checkout.status == status
    assert old.subscription.status == Subscription.Status.EXPIRED
    assert old.subscription.last_reason == Subscription.Reason.NEVER_PAID


@pytest.mark.django_db
def test_its_query_count_does_not_grow_with_the_rows(django_assert_max_num_queries, now):
    for days in (1, 2, 0, -1, -5):
        _sub(days, now=now)
    with CaptureQueriesContext(connection) as few:
        sweep_subscriptions(now=now)
    for days in (1, 2, 0, -1, -5) * 6:
        _sub(days, now=now)
    with CaptureQueriesContext(connection) as many:
        sweep_subscriptions(now=now + timedelta(minutes=1))
    assert len(many) == len(few)
    with django_assert_max_num_queries(len(few)):
        sweep_subscriptions(now=now + timedelta(minutes=2))


@pytest.mark.django_db
def test_the_command_prints_progress_and_a_summary(capsys, now):
    _sub(1, now=now)
    call_command("sweep_subscriptions")
    out = capsys.readouterr().out
    assert "renewals issued 1" in out
    assert out.strip().splitlines()[-1].startswith("Swept")


@pytest.mark.django_db
def test_the_celery_task_runs_the_sweep(now):
    from billing.tasks import sweep_subscriptions as task

    _sub(1, now=now)
    summary = task.apply().get()
    assert summary["renewals_issued"] == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_issue_one_renewal(now):
    subs = [_sub(1, now=now) for _ in range(20)]
    results = []

    errors = race(lambda: results.append(sweep_subscriptions(now=now)), lambda: results.append(sweep_subscriptions(now=now)))

    assert not errors
    assert sum(r.renewals_issued for r in results) == len(subs)
    for sub in subs:
        assert Checkout.objects.filter(subscription=sub, purpose=Checkout.Purpose.RENEWAL).count() == 1


@pytest.mark.django_db
def test_a_failed_renewal_charge_gets_a_fresh_one_at_the_next_sweep(now):
    from billing.services import fail_checkout

    sub = _sub(2, now=now)
    sweep_subscriptions(now=now)
    first = Checkout.objects.get(purpose=Checkout.Purpose.RENEWAL)
    fail_checkout(checkout=first, status=Checkout.Status.EXPIRED, now=now)

    result = sweep_subscriptions(now=now + timedelta(minutes=5))

    assert result.renewals_issued == 1
    fresh = Checkout.objects.get(purpose=Checkout.Purpose.RENEWAL, status=Checkout.Status.PENDING)
    assert fresh.pk != first.pk and fresh.subscription == sub


@pytest.mark.django_db
def test_an_admin_extension_keeps_the_open_renewal_charge(now):
    from billing.services import extend_subscription

    sub = _sub(2, now=now)
    sweep_subscriptions(now=now)
    extend_subscription(subscription=sub, days=1, now=now)

    result = sweep_subscriptions(now=now + timedelta(minutes=5))

    assert result.renewals_issued == 0
    assert Checkout.objects.filter(purpose=Checkout.Purpose.RENEWAL, status=Checkout.Status.PENDING).count() == 1


SAO_PAULO = ZoneInfo("America/Sao_Paulo")


@responses.activate
def test_the_sweep_keeps_a_pix_payable_through_its_expiration_day_and_expires_it_after(jp):
    # given: at 20:00 in São Paulo, a first checkout (with its pending subscription) gets a PIX payable through tomorrow
    tomorrow = timezone.localdate() + timedelta(days=1)
    issued_at = datetime.combine(tomorrow - timedelta(days=1), datetime.min.time(), tzinfo=SAO_PAULO).replace(hour=20)
    with time_machine.travel(issued_at, tick=False):
        user = UserFactory()
        checkout = create_checkout(
            plan=PlanFactory(price_cents=3980), customer_name="Ana Souza", customer_email=user.email,
            customer_document="52998224725", customer_phone="11987654321", user=user,
        )
        responses.post(f"{JP}/transactions", json=jp_answer(checkout, expires_on=tomorrow))
        issue_pix_charge(checkout_id=checkout.public_id)

    # when: the sweep runs at 10:00 and at 23:00 of the expiration day (over a day after the checkout)
    for hour in (10, 23):
        with time_machine.travel(datetime.combine(tomorrow, datetime.min.time(), tzinfo=SAO_PAULO).replace(hour=hour), tick=False):
            sweep_subscriptions()

        # then: still payable
        checkout.refresh_from_db()
        assert checkout.status == Checkout.Status.PENDING
        assert checkout.subscription.status == Subscription.Status.PENDING

    # when: and once that day is over
    with time_machine.travel(datetime.combine(tomorrow + timedelta(days=1), datetime.min.time(), tzinfo=SAO_PAULO) + timedelta(seconds=1), tick=False):
        sweep_subscriptions()

    # then: expired, and its never-paid subscription with it
    checkout.refresh_from_db()
    checkout.subscription.refresh_from_db()
    assert checkout.status == Checkout.Status.EXPIRED
    assert checkout.subscription.status == Subscription.Status.EXPIRED


@pytest.mark.django_db
def test_the_sweep_issues_no_pix_renewal_for_a_subscription_sold_on_the_marketplace():
    # given: two subscriptions due: one sold on the marketplace, one of ours
    now = timezone.now()
    due = {"start_date": now - timedelta(days=28), "end_date": now + timedelta(days=1)}
    marketplace = SubscriptionFactory(external_id="dias-77", plan_match_rule=Subscription.PlanMatch.EXACT_PRICE, **due)
    nearest = SubscriptionFactory(external_id="dias-78", plan_match_rule=Subscription.PlanMatch.NEAREST_PRICE, **due)
    ours = SubscriptionFactory(**due)

    # when
    result = sweep_subscriptions(now=now)

    # then: only ours gets a PIX renewal
    assert result.renewals_issued == 1
    assert list(Checkout.objects.filter(purpose=Checkout.Purpose.RENEWAL).values_list("subscription_id", flat=True)) == [ours.pk]
    assert not Checkout.objects.filter(subscription__in=[marketplace, nearest]).exists()


DAY = timedelta(days=1)


@pytest.mark.django_db
def test_the_sweeps_renewal_charges_snapshot_the_plan_as_sold(monthly, now):
    SubscriptionFactory(plan=monthly, start_date=now - 28 * DAY, end_date=now + 2 * DAY)

    sweep_subscriptions(now=now)

    renewal = Checkout.objects.get(purpose=Checkout.Purpose.RENEWAL)
    assert (renewal.plan_price_cents, renewal.plan_duration_days) == (2990, 30)
