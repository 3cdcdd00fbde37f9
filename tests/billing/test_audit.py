"""The money audit (billing.audit): clean on histories the services write; each invariant reports the corruption it forbids."""

from datetime import timedelta
from importlib import import_module

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing import ledger
from billing.access import user_has_access
from billing.audit import expected_access, run_audit
from billing.ledger_models import AppendOnlyError, LedgerEntry, MoneyAuditRun
from billing.models import Checkout, Coupon, Subscription
from billing.services import (
    activate_checkout,
    cancel_subscription_now,
    change_plan,
    create_checkout,
    extend_subscription,
    refund_checkout,
    sweep_subscriptions,
    withdraw_subscription,
)
from billing.tasks import audit_money
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def buy(user, plan, *, at, purpose=Checkout.Purpose.NEW, subscription=None):
    checkout = create_checkout(
        plan=plan, customer_name="Ana", customer_email=user.email, user=user, purpose=purpose, subscription=subscription, now=at
    )
    activate_checkout(checkout=checkout, now=at, transaction_id=f"tx-{checkout.pk}")
    checkout.refresh_from_db()
    return checkout


def codes(report):
    return {violation.code for violation in report.violations}


def test_a_history_written_by_the_services_audits_clean(monthly, quarterly, superuser, now):
    ana, bia, caio = UserFactory(), UserFactory(), UserFactory()
    first = buy(ana, monthly, at=now)
    buy(ana, monthly, at=now + timedelta(days=25), purpose=Checkout.Purpose.RENEWAL, subscription=first.subscription)
    upgrade = change_plan(subscription=first.subscription, plan=quarterly, now=now + timedelta(days=40)).checkout
    activate_checkout(checkout=upgrade, now=now + timedelta(days=40), transaction_id="tx-up")
    extend_subscription(subscription=first.subscription, days=5, actor=superuser, reason="cortesia", now=now + timedelta(days=41))
    lone = buy(bia, monthly, at=now)
    refund_checkout(checkout=lone, now=now + timedelta(days=2))
    kept = buy(caio, monthly, at=now)
    withdraw_subscription(subscription=kept.subscription, now=now + timedelta(days=3))
    sweep_subscriptions(now=now + timedelta(days=45))

    report = run_audit(now=now + timedelta(days=45))

    assert report.violations == [], [str(v) for v in report.violations]
    for user in (ana, bia, caio):
        at = now + timedelta(days=45)
        assert user_has_access(user, now=at) == expected_access(user, now=at)


def test_expected_access_follows_grants_revokes_and_grace(monthly, now):
    ana = UserFactory()
    checkout = buy(ana, monthly, at=now)
    assert expected_access(ana, now=now + timedelta(days=29)) is True
    assert expected_access(ana, now=now + timedelta(days=31)) is True  # grace: a renewal may still be paid
    assert user_has_access(ana, now=now + timedelta(days=31)) is True
    refund_checkout(checkout=checkout, now=now + timedelta(days=1))
    assert expected_access(ana, now=now + timedelta(days=2)) is False
    assert user_has_access(ana, now=now + timedelta(days=2)) is False


def test_ledger_rows_are_append_only(monthly, now):
    buy(UserFactory(), monthly, at=now)
    entry = LedgerEntry.objects.first()
    with pytest.raises(AppendOnlyError):
        entry.save()
    with pytest.raises(AppendOnlyError):
        entry.delete()
    with pytest.raises(AppendOnlyError):
        LedgerEntry.objects.filter(pk=entry.pk).update(amount_cents=1)


def test_a_paid_checkout_missing_from_the_ledger_breaks_invariant_1(monthly, now):
    checkout = buy(UserFactory(), monthly, at=now)
    Checkout.objects.filter(pk=checkout.pk).update(status=Checkout.Status.PENDING)
    other = create_checkout(plan=monthly, customer_name="Bia", customer_email="bia@example.com", now=now)
    Checkout.objects.filter(pk=other.pk).update(status=Checkout.Status.PAID, paid_at=now)  # paid with no ledger row

    report = run_audit(now=now)

    assert "paid_checkout_unaccounted" in codes(report)
    violation = next(v for v in report.violations if v.code == "paid_checkout_unaccounted")
    assert violation.invariant == 1 and violation.rows == {"checkout": [other.pk]}


def test_a_transaction_counted_twice_breaks_invariant_1(monthly, now):
    checkout = buy(UserFactory(), monthly, at=now)
    ledger.record_listed(cause=LedgerEntry.Cause.DUPLICATE, amount_cents=2990, checkout=checkout, transaction_id=checkout.paid_transaction_id, now=now)
    assert {"paid_checkout_accounted_twice", "transaction_accounted_twice"} <= codes(run_audit(now=now))


def test_a_duplicate_payments_refund_leaves_the_checkouts_revenue_alone(monthly, now):
    checkout = buy(UserFactory(), monthly, at=now)
    ledger.record_listed(cause=LedgerEntry.Cause.DUPLICATE, amount_cents=2990, checkout=checkout, transaction_id="tx-second", now=now)
    ledger.record_refund(checkout=checkout, transaction_id="tx-second", amount_cents=2990, now=now)
    assert run_audit(now=now).violations == []


def test_revenue_that_differs_from_the_ledger_breaks_invariant_2(monthly, now):
    checkout = buy(UserFactory(), monthly, at=now)
    Checkout.objects.filter(pk=checkout.pk).update(status=Checkout.Status.REFUNDED)  # refunded with no refund recorded
    report = run_audit(now=now)
    assert any(v.invariant == 2 and v.rows == {"checkout": [checkout.pk]} for v in report.violations)


def test_paid_days_taken_away_break_invariant_3(monthly, now):
    checkout = buy(UserFactory(), monthly, at=now)
    Subscription.objects.filter(pk=checkout.subscription_id).update(end_date=now + timedelta(days=10))
    assert "coverage_cut_short" in codes(run_audit(now=now))


def test_a_subscription_expired_while_paid_breaks_invariant_3(monthly, now):
    checkout = buy(UserFactory(), monthly, at=now)
    Subscription.objects.filter(pk=checkout.subscription_id).update(status=Subscription.Status.EXPIRED, last_transition_at=now)
    assert "ended_while_covered" in codes(run_audit(now=now))


def test_unpaid_days_break_invariant_4(monthly, now):
    checkout = buy(UserFactory(), monthly, at=now)
    Subscription.objects.filter(pk=checkout.subscription_id).update(end_date=now + timedelta(days=60))
    report = run_audit(now=now)
    assert any(v.invariant == 4 and v.code == "access_beyond_coverage" for v in report.violations)


def test_an_admin_grant_without_who_and_why_breaks_invariant_4(monthly, now):
    checkout = buy(UserFactory(), monthly, at=now)
    extend_subscription(subscription=checkout.subscription, days=3, now=now)  # no actor, no reason
    assert "admin_grant_unexplained" in codes(run_audit(now=now))


def test_a_refund_that_revokes_another_payments_days_breaks_invariant_5(monthly, now):
    first = buy(UserFactory(), monthly, at=now)
    renewal = buy(first.user, monthly, at=now + timedelta(days=25), purpose=Checkout.Purpose.RENEWAL, subscription=first.subscription)
    # The renewal's refund takes back everything from day 26 on, the first payment's last 4 days included.
    ledger.record_refund(checkout=renewal, now=now + timedelta(days=26))
    Checkout.objects.filter(pk=renewal.pk).update(status=Checkout.Status.REFUNDED)
    ledger.record_revoke(
        subscription=first.subscription, starts_at=now + timedelta(days=26), ends_at=now + timedelta(days=60),
        cause=LedgerEntry.Cause.REFUND, checkout=renewal, now=now + timedelta(days=26),
    )
    Subscription.objects.filter(pk=first.subscription_id).update(
        status=Subscription.Status.REFUNDED, last_transition_at=now + timedelta(days=26)
    )
    report = run_audit(now=now + timedelta(days=26))
    assert any(v.invariant == 5 and v.code == "refund_revoked_other_payment" for v in report.violations)


def test_a_refund_that_leaves_its_days_breaks_invariant_5(monthly, now):
    checkout = buy(UserFactory(), monthly, at=now)
    ledger.record_refund(checkout=checkout, now=now)
    Checkout.objects.filter(pk=checkout.pk).update(status=Checkout.Status.REFUNDED)
    assert "refund_left_its_days" in codes(run_audit(now=now))


def test_a_credit_above_the_money_paid_breaks_invariant_6(monthly, quarterly, now):
    checkout = buy(UserFactory(), monthly, at=now)
    upgrade = change_plan(subscription=checkout.subscription, plan=quarterly, now=now + timedelta(days=10)).checkout
    Checkout.objects.filter(pk=upgrade.pk).update(credit_cents=2990, total_cents=7990 - 2990)  # the whole price, 10 days used
    upgrade.refresh_from_db()
    activate_checkout(checkout=upgrade, now=now + timedelta(days=10), transaction_id="tx-up")
    assert "credit_exceeds_paid_value" in codes(run_audit(now=now + timedelta(days=10)))


def test_a_coupon_past_its_maximum_breaks_invariant_6(monthly, now):
    coupon = Coupon.objects.create(code="UMA", kind=Coupon.Kind.PERCENT, value=10, max_uses=1, starts_at=now - timedelta(days=1))
    for email in ("a@example.com", "b@example.com"):
        user = UserFactory(email=email)
        checkout = create_checkout(plan=monthly, customer_name="A", customer_email=email, user=user, coupon_code="UMA", now=now)
        activate_checkout(checkout=checkout, now=now, transaction_id=f"tx-{checkout.pk}")
        Coupon.objects.filter(pk=coupon.pk).update(uses=0)  # as if the use were never counted: the second sale goes through
    assert "coupon_over_max_uses" in codes(run_audit(now=now))


def test_a_withdrawal_after_its_window_breaks_invariant_7(monthly, settings, now):
    checkout = buy(UserFactory(), monthly, at=now)
    withdraw_subscription(subscription=checkout.subscription, now=now + timedelta(days=1))
    settings.WITHDRAWAL_DAYS = 0  # the request now lies outside the window
    assert "withdrawal_after_window" in codes(run_audit(now=now + timedelta(days=1)))


def test_days_granted_after_the_account_was_deleted_break_invariant_8(monthly, now):
    ana = UserFactory()
    checkout = buy(ana, monthly, at=now)
    cancel_subscription_now(subscription=checkout.subscription, reason="x", now=now)
    ledger.record_erasure(user=ana, now=now)
    ledger.record_grant(subscription=checkout.subscription, starts_at=now, ends_at=now + timedelta(days=1), cause="new", checkout=checkout, now=now)
    assert "paid_after_deletion" in codes(run_audit(now=now))


def test_the_command_exits_0_when_clean_and_1_with_a_violation(monthly, capsys, now):
    checkout = buy(UserFactory(), monthly, at=now)
    call_command("audit_money")
    assert "0 violation(s)" in capsys.readouterr().out
    Subscription.objects.filter(pk=checkout.subscription_id).update(end_date=now + timedelta(days=90))
    with pytest.raises(SystemExit) as exit_:
        call_command("audit_money", "--since", (now - timedelta(days=1)).date().isoformat())
    assert exit_.value.code == 1
    out = capsys.readouterr().out
    assert "access_beyond_coverage" in out and "subscription=" in out and "1 violation(s)" in out.splitlines()[-1] or "violation(s)" in out


def test_the_daily_task_keeps_its_run_for_the_admin(monthly, admin_client, now):
    buy(UserFactory(), monthly, at=now)
    result = audit_money.delay().get()
    assert result["violations"] == 0
    run = MoneyAuditRun.objects.get()
    assert run.violation_count == 0 and run.queries == result["queries"]


def test_the_audit_runs_a_fixed_number_of_queries_whatever_the_rows(monthly, now):
    def queries_for(buyers: int) -> int:
        for _ in range(buyers):
            buy(UserFactory(), monthly, at=now)
        with CaptureQueriesContext(connection) as captured:
            assert run_audit(now=now).violations == []
        return len(captured)

    few = queries_for(3)
    many = queries_for(40)
    assert few == many


def test_the_admin_index_shows_the_last_audit_and_its_page_lists_the_violations(monthly, admin_client, now):
    checkout = buy(UserFactory(), monthly, at=now)
    Subscription.objects.filter(pk=checkout.subscription_id).update(end_date=now + timedelta(days=90))
    audit_money.delay().get()
    run = MoneyAuditRun.objects.get()

    index = admin_client.get("/admin/", HTTP_ACCEPT_LANGUAGE="pt-br").content.decode()
    page = admin_client.get(f"/admin/billing/moneyauditrun/{run.pk}/change/").content.decode()

    assert "Auditoria financeira: 1 violação" in index
    assert "access_beyond_coverage" in page


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_the_audit_reads_one_read_only_snapshot(monthly, now):
    buy(UserFactory(), monthly, at=now)
    statements = []

    def seen(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(seen):
        report = run_audit(now=now)

    assert report.violations == []
    assert statements[0] == "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"
    assert report.queries == len(statements) - 1


def test_on_sqlite_the_command_says_it_needs_postgresql_and_the_backfill_does_nothing(monkeypatch):
    # `make run`'s development database is SQLite: migrating it must work, and the audit must say why it cannot run.
    backfill = import_module("billing.migrations.0013_money_audit_backfill").backfill
    monkeypatch.setattr(connection, "vendor", "sqlite")

    assert backfill(connection=connection) == []
    with pytest.raises(CommandError, match="needs PostgreSQL"):
        call_command("audit_money")
