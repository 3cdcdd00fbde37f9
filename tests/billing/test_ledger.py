"""The money ledger's backfill (billing/migrations/0013): the rows the database held before the ledger audit clean once filled."""

import importlib
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection

from billing.audit import run_audit
from billing.ledger_models import LedgerEntry
from billing.models import Checkout, Subscription
from billing.services import (
    activate_checkout,
    activate_subscription,
    cancel_subscription_now,
    change_plan,
    create_checkout,
    expire_subscription,
    refund_checkout,
    sweep_subscriptions,
    withdraw_subscription,
)
from tests.factories import PlanFactory, SubscriptionFactory, UserFactory

pytestmark = pytest.mark.django_db
backfill = importlib.import_module("billing.migrations.0013_money_audit_backfill").backfill


def forget_the_ledger():
    """A database written by the code before the ledger: the same rows, no ledger."""
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM billing_ledgerentry")


def buy(user, plan, *, at, purpose=Checkout.Purpose.NEW, subscription=None):
    checkout = create_checkout(
        plan=plan, customer_name="Ana", customer_email=user.email, user=user, purpose=purpose, subscription=subscription, now=at
    )
    activate_checkout(checkout=checkout, now=at, transaction_id=f"tx-{checkout.pk}")
    checkout.refresh_from_db()
    return checkout


def test_typical_histories_audit_clean_once_backfilled(now):
    monthly = PlanFactory(price_cents=2990, duration_days=30)
    quarterly = PlanFactory(price_cents=7990, duration_days=90)
    renewed = buy(UserFactory(), monthly, at=now)
    buy(renewed.user, monthly, at=now + timedelta(days=28), purpose=Checkout.Purpose.RENEWAL, subscription=renewed.subscription)
    upgraded = buy(UserFactory(), monthly, at=now)
    upgrade = change_plan(subscription=upgraded.subscription, plan=quarterly, now=now + timedelta(days=5)).checkout
    activate_checkout(checkout=upgrade, now=now + timedelta(days=5), transaction_id="tx-up")
    refund_checkout(checkout=buy(UserFactory(), monthly, at=now), now=now + timedelta(days=1))
    withdraw_subscription(subscription=buy(UserFactory(), monthly, at=now).subscription, now=now + timedelta(days=2))
    cancel_subscription_now(subscription=buy(UserFactory(), monthly, at=now).subscription, now=now + timedelta(days=3))
    expire_subscription(subscription=buy(UserFactory(), monthly, at=now).subscription, now=now + timedelta(days=3))
    courtesy = SubscriptionFactory(plan=monthly, status=Subscription.Status.PENDING, start_date=None, end_date=None)
    activate_subscription(subscription=courtesy, now=now)
    buy(UserFactory(), monthly, at=now - timedelta(days=60))  # lapsed: the sweep expires it
    sweep_subscriptions(now=now + timedelta(days=6))
    forget_the_ledger()

    assert run_audit(now=now + timedelta(days=6)).violations  # before: the old rows explain nothing
    added = backfill(connection=connection)

    report = run_audit(now=now + timedelta(days=6))
    assert report.violations == [], [str(v) for v in report.violations]
    assert backfill(connection=connection) == [0] * len(added)  # idempotent
    assert LedgerEntry.objects.filter(cause=LedgerEntry.Cause.BACKFILL, kind=LedgerEntry.Kind.GRANT, note="backfilled").exists()


def test_the_demo_data_audits_clean_as_loaded_and_once_backfilled(settings):
    settings.DEBUG = True
    call_command("load_demo")
    report = run_audit()
    assert report.violations == [], [str(v) for v in report.violations]

    forget_the_ledger()
    backfill(connection=connection)
    report = run_audit()
    assert report.violations == [], [str(v) for v in report.violations]
