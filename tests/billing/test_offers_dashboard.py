"""The offers' figures (billing.selectors.get_offer_figures): coupon use, trial → paid, recovered sales, renewal funnel, churn by cause, MRR net."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billing.models import Checkout, Coupon, Subscription
from billing.selectors import get_offer_figures
from billing.services import activate_checkout, cancel_subscription, create_checkout, settle_free_checkout, sweep_subscriptions
from tests.factories import PlanFactory, UserFactory

pytestmark = pytest.mark.django_db


def make_data(n=1, *, now):
    """n of each: a paid coupon sale (recurring), an unpaid coupon checkout, a trial converted, a trial ended unpaid,
    a recovered sale, a renewal issued/opened/paid, a voluntary and an involuntary churn."""
    plan = PlanFactory(price_cents=3000, duration_days=30, trial_days=7)
    coupon = Coupon.objects.create(code=f"C{Coupon.objects.count()}", kind=Coupon.Kind.PERCENT, value=10, renewals=None, starts_at=now - timedelta(days=60))
    for i in range(n):
        tag = f"{Checkout.objects.count()}-{i}"
        sold = create_checkout(plan=plan, customer_name="A", customer_email=f"a{tag}@example.com", user=UserFactory(email=f"a{tag}@example.com"), coupon_code=coupon.code, now=now - timedelta(days=40))
        sub = activate_checkout(checkout=sold, now=now - timedelta(days=40))
        create_checkout(plan=plan, customer_name="B", customer_email=f"b{tag}@example.com", coupon_code=coupon.code, now=now - timedelta(days=2))
        Checkout.objects.filter(pk=sold.pk).update(created_at=now - timedelta(days=3))  # within the coupon table's window
        # The coupon sale's renewal: issued, opened (a PIX was generated), paid.
        sweep_subscriptions(now=sub.end_date - timedelta(days=1))
        renewal = Checkout.objects.get(subscription=sub, purpose=Checkout.Purpose.RENEWAL)
        Checkout.objects.filter(pk=renewal.pk).update(gateway_transaction_id=f"tx-{tag}", created_at=now - timedelta(hours=1))
        activate_checkout(checkout=renewal, now=now - timedelta(hours=1))

        for converted in (True, False):
            who = f"t{converted}{tag}@example.com"
            trial = create_checkout(plan=plan, customer_name="T", customer_email=who, user=UserFactory(email=who), trial=True, now=now - timedelta(days=20))
            settle_free_checkout(checkout=trial, now=now - timedelta(days=20))
            trial_sub = Subscription.objects.get(checkouts=trial)
            sweep_subscriptions(now=now - timedelta(days=14))
            if converted:
                activate_checkout(checkout=Checkout.objects.get(subscription=trial_sub, purpose=Checkout.Purpose.RENEWAL), now=now - timedelta(days=14))
        sweep_subscriptions(now=now - timedelta(days=12))  # the unpaid trial has ended: involuntary churn

        lost = create_checkout(plan=plan, customer_name="R", customer_email=f"r{tag}@example.com", now=now - timedelta(hours=3))
        Checkout.objects.filter(pk=lost.pk).update(recovery_reminders_sent=1)
        activate_checkout(checkout=lost, now=now - timedelta(hours=2))

        quitter = create_checkout(plan=plan, customer_name="Q", customer_email=f"q{tag}@example.com", user=UserFactory(email=f"q{tag}@example.com"), trial=False, now=now - timedelta(days=35))
        quitter_sub = activate_checkout(checkout=quitter, now=now - timedelta(days=35))
        cancel_subscription(subscription=quitter_sub, now=now - timedelta(days=34))
    sweep_subscriptions(now=now)
    return coupon


def test_the_offer_figures_count_each_offer(now):
    coupon = make_data(now=now)

    f = get_offer_figures(now=now + timedelta(minutes=1))

    [row] = [r for r in f.coupons if r.code == coupon.code]
    assert (row.checkouts, row.paid, row.discount_cents, row.uses) == (2, 1, 600, 1)  # the sale's and its renewal's discount
    assert row.conversion_pct == 50.0
    assert (f.trials_started, f.trials_converted, f.trials_ended_unpaid) == (2, 1, 1) and f.trial_conversion_pct == 50.0
    assert f.recovered_30d == 1 and f.recovered_30d_cents == 3000 and f.reminded_30d >= 1
    this_month = f.funnel[-1]
    assert (this_month.issued, this_month.opened, this_month.paid) >= (1, 1, 1)
    assert f.churn_voluntary_30d == 1 and f.churn_involuntary_30d == 1
    assert f.mrr_discount_cents == 300  # the recurring coupon's 10% on the one active discounted subscription


def test_the_offer_figures_take_the_same_number_of_queries_whatever_the_rows(now):
    make_data(1, now=now)
    with CaptureQueriesContext(connection) as few:
        get_offer_figures(now=now + timedelta(minutes=1))
    make_data(3, now=now)
    with CaptureQueriesContext(connection) as many:
        get_offer_figures(now=now + timedelta(minutes=1))
    assert len(many) == len(few) == 6


def test_the_dashboard_shows_the_offers_and_exports_each_table_as_csv(client, superuser, now):
    coupon = make_data(now=now)
    client.force_login(superuser)
    url = reverse("admin:billing_financedashboard_changelist")

    page = client.get(url)
    coupons_csv = client.get(url + "?csv=coupons")
    funnel_csv = client.get(url + "?csv=funnel")

    body = page.content.decode()
    assert page.status_code == 200
    for block in ("fin-mrr-net", "fin-trials", "fin-recovered", "fin-churn-split", "fin-funnel", "fin-coupons"):
        assert f'id="{block}"' in body
    assert coupon.code in body
    assert coupons_csv["Content-Type"].startswith("text/csv") and coupon.code in coupons_csv.content.decode()
    assert len(funnel_csv.content.decode().strip().splitlines()) == 13  # header + 12 months
