from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import timezone

from billing.demo import DEMO_DOMAIN
from billing.models import (
    Checkout,
    Coupon,
    OrderBump,
    PaymentGateway,
    Plan,
    Subscription,
)
from billing.selectors import get_finance_figures, get_offer_figures
from catalog.management.commands.load_demo import DEMO_ADMIN_EMAIL, DEMO_ADMIN_PASSWORD

pytestmark = pytest.mark.django_db


def _snapshot():
    return (
        sorted(Plan.objects.values_list("name", "price_cents", "duration_days")),
        sorted(OrderBump.objects.values_list("name", "price_cents")),
        sorted(PaymentGateway.objects.values_list("kind", "is_active")),
        sorted(get_user_model().objects.values_list("email", "is_superuser")),
    )


def test_load_demo_twice_gives_the_same_rows(settings, capsys):
    settings.DEBUG = True
    call_command("load_demo")
    first = _snapshot()
    call_command("load_demo")

    assert _snapshot() == first
    assert first[0] == [("Anual", 23990, 365), ("Mensal", 2990, 30), ("Trimestral", 7990, 90)]
    assert ("sandbox", True) in first[2]
    out = capsys.readouterr().out
    assert "admin@creatorflix.local" in out and "password:" in out


def test_the_demo_admin_can_log_in(settings, client):
    settings.DEBUG = True
    call_command("load_demo")

    assert client.login(username=DEMO_ADMIN_EMAIL, password=DEMO_ADMIN_PASSWORD)
    assert client.get("/admin/").status_code == 200


def test_load_demo_refuses_without_debug(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError):
        call_command("load_demo")


def _sales_snapshot():
    return (
        get_user_model().objects.count(),
        sorted(Checkout.objects.values_list("customer_email", "purpose", "status", "total_cents")),
        sorted(Subscription.objects.values_list("user__email", "status")),
        sorted(Coupon.objects.values_list("code", "uses")),
    )


def test_load_demo_adds_months_of_demo_sales_once_and_the_dashboard_shows_them(settings, capsys, admin_client):
    settings.DEBUG = True
    call_command("load_demo")
    first = _sales_snapshot()
    call_command("load_demo")  # idempotent: nothing added, nothing changed
    assert _sales_snapshot() == first
    assert "demo sales already loaded" in capsys.readouterr().out

    assert Plan.objects.get(name="Mensal").trial_days == 7
    # marked as demo data: every customer is @demo.creatorflix.local, every campaign demo-*, no gateway charge made
    customers = Checkout.objects.values_list("customer_email", flat=True)
    assert customers and all(email.endswith("@" + DEMO_DOMAIN) for email in customers)
    assert all(
        (tracking.get("last") or {}).get("utm_campaign", "").startswith("demo-")
        for tracking in Checkout.objects.filter(purpose=Checkout.Purpose.NEW).values_list("tracking", flat=True)
    )
    oldest = Checkout.objects.order_by("created_at").values_list("created_at", flat=True).first()
    assert oldest < timezone.now() - timedelta(days=90)  # a few months

    statuses = set(Checkout.objects.values_list("status", flat=True))
    assert {Checkout.Status.PAID, Checkout.Status.REFUNDED, Checkout.Status.EXPIRED} <= statuses
    assert Checkout.objects.filter(purpose=Checkout.Purpose.RENEWAL, status=Checkout.Status.PAID).exists()
    assert Checkout.objects.filter(is_recovered=True).count() == 1
    assert Subscription.objects.filter(status=Subscription.Status.TRIALING).count() == 1

    now = timezone.now()
    finance = get_finance_figures(now=now)
    assert finance.revenue_30d_cents > 0 and finance.active_subscribers > 0 and finance.mrr_cents > 0
    assert finance.checkouts_30d > finance.paid_checkouts_30d > 0
    assert sum(point.cents for point in finance.revenue_by_month) > finance.revenue_30d_cents
    offers = get_offer_figures(now=now)
    assert offers.trials_started >= 3 and offers.trials_converted >= 1 and offers.trials_ended_unpaid >= 1
    assert offers.trials_running == 1
    assert any(row.uses and row.discount_cents for row in offers.coupons)
    assert offers.reminded_30d >= 1 and offers.recovered_30d == 1
    assert sum(row.issued for row in offers.funnel) > 0 and sum(row.paid for row in offers.funnel) > 0
    assert offers.churn_voluntary_30d + offers.churn_involuntary_30d > 0
    assert offers.mrr_discount_cents > 0

    assert admin_client.get(reverse("admin:billing_financedashboard_changelist")).status_code == 200


def test_load_demo_with_force_and_no_debug_adds_no_trial_and_no_sales(settings):
    settings.DEBUG = False
    call_command("load_demo", "--force")
    assert not Plan.objects.filter(trial_days__gt=0).exists()
    assert not Checkout.objects.exists()


def test_load_demo_publishes_the_terms_and_privacy_pages_once(settings, client):
    from legal.models import LegalDocument

    settings.DEBUG = True
    call_command("load_demo", "--no-sales")
    call_command("load_demo", "--no-sales")

    assert sorted(LegalDocument.objects.filter(published_at__isnull=False).values_list("kind", flat=True)) == ["privacy", "terms"]
    assert client.get("/terms/").status_code == 200
    assert client.get("/privacy/").status_code == 200
