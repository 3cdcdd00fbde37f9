import html
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from billing.models import Checkout, ReconciliationItem, Subscription
from billing.selectors import get_finance_figures
from tests.billing.paymentkit import (
    jp_checkout,
)
from tests.factories import CheckoutFactory, PlanFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db
SP = ZoneInfo("America/Sao_Paulo")
NOW = datetime(2026, 6, 15, 12, 0, tzinfo=SP)


@pytest.fixture
def known_data():
    """
    monthly R$ 29,90/30d, quarterly R$ 79,90/90d.
    Subscriptions: 2 monthly active, 1 quarterly active, 1 monthly past due in grace
    (ended 1 day ago), 1 expired 10 days ago, 1 canceled 40 days ago (outside the window),
    1 pending never paid 5 days ago (not churn).
    Checkouts in the last 30 days: 4 paid, 1 refunded, 2 pending PIX, 1 expired → 8.
    """
    monthly = PlanFactory(price_cents=2990, duration_days=30)
    quarterly = PlanFactory(price_cents=7990, duration_days=90)

    def sub(plan, start_days_ago, status=Subscription.Status.ACTIVE, **kw):
        start = NOW - timedelta(days=start_days_ago)
        return SubscriptionFactory(plan=plan, start_date=start, end_date=start + timedelta(days=plan.duration_days), status=status, **kw)

    sub(monthly, 5)  # ends in 25 days
    sub(monthly, 25)  # ends in 5 days: renewal due within 7 days
    sub(quarterly, 86, next_plan=monthly)  # ends in 4 days: due, at the monthly price
    sub(monthly, 31, status=Subscription.Status.PAST_DUE)  # ended 1 day ago, in grace
    sub(monthly, 60, status=Subscription.Status.EXPIRED, last_reason="expired", last_transition_at=NOW - timedelta(days=10))
    sub(monthly, 100, status=Subscription.Status.CANCELED, last_reason="canceled_by_user", last_transition_at=NOW - timedelta(days=40))
    sub(monthly, 5, status=Subscription.Status.EXPIRED, last_reason="never_paid", last_transition_at=NOW - timedelta(days=5))

    def checkout(status, days_ago, cents=2990, **kw):
        when = NOW - timedelta(days=days_ago)
        return CheckoutFactory(plan=monthly, plan_price_cents=cents, status=status, created_at=when,
                               paid_at=when if status in ("paid", "refunded") else None, **kw)

    checkout("paid", 0)
    checkout("paid", 0, cents=7990)
    checkout("paid", 3)
    checkout("paid", 20, is_late=True)
    checkout("refunded", 2)
    checkout("pending", 0)
    checkout("pending", 1, cents=7990)
    checkout("expired", 4)
    checkout("paid", 45)  # previous month, outside the 30-day window
    checkout("pending", 0, payment_method=Checkout.Method.CARD)  # not PIX
    return monthly, quarterly


def test_figures_match_the_known_data_set(known_data):
    f = get_finance_figures(now=NOW)

    assert [p.cents for p in f.revenue_by_day[-1:]] == [2990 + 7990]
    assert f.revenue_by_day[-4].cents == 2990 and f.revenue_by_day[-21].cents == 2990
    assert len(f.revenue_by_day) == 30 and f.revenue_by_day[-1].period == NOW.date()
    assert f.revenue_30d_cents == 2990 * 3 + 7990  # refunded excluded
    assert len(f.revenue_by_month) == 12
    assert f.revenue_by_month[-1].cents == 2990 * 2 + 7990  # June: 15th and 12th
    assert f.revenue_by_month[-2].cents == 2990 * 2  # May: 26th (late) and 1st (45 days ago)
    assert sum(p.cents for p in f.revenue_by_month[:-2]) == 0
    assert f.active_subscribers == 4  # 3 active + 1 in grace
    # MRR: 2 × 2990 + 7990 × 30/90 = 5980 + 2663.33 → 8643
    assert f.mrr_cents == 8643
    assert (f.pending_pix_count, f.pending_pix_cents) == (2, 2990 + 7990)
    assert (f.paid_checkouts_30d, f.checkouts_30d) == (5, 9)
    assert f.conversion_pct == 55.6
    assert f.renewals_due_7d == 2 and f.renewals_due_7d_cents == 2990 + 2990
    assert f.churned_30d == 1
    assert f.churn_pct == 20.0  # 1 / (4 live + 1)
    assert f.late_payments_30d == 1


def test_the_dashboard_page_shows_the_figures_and_a_chart(client, superuser, known_data):
    import time_machine

    client.force_login(superuser)
    with time_machine.travel(NOW, tick=False):
        response = client.get(reverse("admin:billing_financedashboard_changelist"))
    page = response.content.decode()
    assert response.status_code == 200
    assert "<svg" in page and "<rect" in page
    assert "R$ 86,43" in page  # MRR
    assert "55,6%" in page or "55.6%" in page
    assert "http://" not in page.split("<svg", 1)[1].split("</svg>", 1)[0].replace("http://www.w3.org/2000/svg", "")


def test_its_query_count_is_fixed(known_data, django_assert_max_num_queries):
    with django_assert_max_num_queries(12):  # + partial payments awaiting a person, + refunds pending (withdrawals), + revenue by source
        get_finance_figures(now=NOW)


Kind = ReconciliationItem.Kind


def test_the_finance_dashboard_shows_partial_payments_awaiting_a_person(admin_client, jp):
    now = timezone.now()
    for index, (cents, resolved) in enumerate([(1000, False), (2500, False), (9900, True)]):
        checkout = jp_checkout(jp, transaction_id=str(900 + index))
        ReconciliationItem.objects.create(
            gateway=jp, transaction_id=str(900 + index), checkout=checkout, kind=Kind.PARTIAL_PAYMENT, amount_cents=cents, resolved=resolved
        )

    figures = get_finance_figures(now=now)
    page = admin_client.get("/admin/billing/financedashboard/").content.decode()

    assert (figures.partial_payments_count, figures.partial_payments_cents) == (2, 3500)
    assert 'id="fin-partial"' in page and "R$ 35,00" in page


def test_every_card_links_by_its_title_to_the_list_behind_it(client, superuser, known_data):
    client.force_login(superuser)
    page = client.get(reverse("admin:billing_financedashboard_changelist")).content.decode()

    cards = re.findall(r'<div class="fin-card" id="([\w-]+)"><h3>(.*?)</h3>', page)
    links = {card: re.match(r'<a href="([^"]+)">([^<]+)</a>$', title) for card, title in cards}
    assert len(cards) >= 16 and [card for card, link in links.items() if link is None] == []
    for card, link in links.items():
        url, text = html.unescape(link.group(1)), link.group(2).strip()
        assert text, card  # a link with words, for screen readers (axe-core's link-name)
        response = client.get(url)
        assert response.status_code == 200 and "cl" in response.context, card  # a filter the list refused redirects with ?e=1
