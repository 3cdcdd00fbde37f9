"""Where sales come from (contract §3 `tracking`): the attribution cookie, the checkout, the admin, the dashboard."""

import csv
import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billing.models import Checkout
from billing.selectors import get_finance_figures
from integrations.attribution import COOKIE_NAME
from tests.billing.paymentkit import sandbox
from tests.factories import CheckoutFactory, PlanFactory

pytestmark = pytest.mark.django_db

VALID = {"payment_method": "pix", "name": "Ana Souza", "email": "ana@example.com", "cpf": "529.982.247-25", "phone": "(11) 98765-4321", "birth_date": "1990-05-20"}


@pytest.fixture
def gateway(settings):
    settings.SANDBOX_GATEWAY_ALLOWED = True
    return sandbox()


def test_a_landing_url_keeps_the_first_touch_and_moves_the_last_touch(client):
    # given a first visit from an Instagram campaign
    client.get("/?utm_source=instagram&utm_campaign=bf&fbclid=IwAR0&bogus=1")
    # when the visitor comes back from Google
    response = client.get("/plans/?utm_source=google&gclid=Cj0K")
    # then the cookie keeps the first touch and the new last touch, for 30 days
    cookie = response.cookies[COOKIE_NAME]
    assert cookie["max-age"] == 30 * 24 * 3600 and cookie["httponly"] and cookie["samesite"] == "Lax"
    client.get("/")  # a plain page view changes nothing
    from django.test import RequestFactory

    from integrations.attribution import read_attribution

    request = RequestFactory().get("/")
    request.COOKIES = {COOKIE_NAME: client.cookies[COOKIE_NAME].value}
    assert read_attribution(request) == {
        "first": {"utm_source": "instagram", "utm_campaign": "bf", "fbclid": "IwAR0"},
        "last": {"utm_source": "google", "gclid": "Cj0K"},
    }


def test_a_tampered_attribution_cookie_is_ignored(client, gateway):
    client.cookies[COOKIE_NAME] = '{"first":{"utm_source":"forged"}}'
    plan = PlanFactory()
    response = client.post("/api/checkout/process", {**VALID, "plan_id": plan.pk}, content_type="application/json")
    assert response.status_code == 201
    assert Checkout.objects.get().tracking == {}


def test_a_checkout_stores_the_cookies_first_touch_and_the_pages_last_touch(client, gateway):
    # given a visitor who landed from Instagram
    client.get("/?utm_source=instagram&utm_campaign=bf")
    plan = PlanFactory()
    # when the checkout page sends the parameters of the latest landing URL
    response = client.post(
        "/api/checkout/process",
        {**VALID, "plan_id": plan.pk, "tracking": {"utm_source": "tiktok", "ttclid": "E.C.P.abc"}},
        content_type="application/json",
    )
    # then
    assert response.status_code == 201, response.content
    assert Checkout.objects.get().tracking == {
        "first": {"utm_source": "instagram", "utm_campaign": "bf"},
        "last": {"utm_source": "tiktok", "ttclid": "E.C.P.abc"},
    }


def test_the_cookie_alone_is_enough_for_the_checkout(client, gateway):
    client.get("/?utm_source=instagram&sck=story")
    plan = PlanFactory()
    assert client.post("/api/checkout/process", {**VALID, "plan_id": plan.pk}, content_type="application/json").status_code == 201
    assert Checkout.objects.get().tracking == {"first": {"utm_source": "instagram", "sck": "story"}, "last": {"utm_source": "instagram", "sck": "story"}}


@pytest.mark.parametrize(
    "tracking",
    [{"utm_source": "x", "referrer": "evil"}, {"utm_source": "x" * 256}, {"utm_source": {"nested": 1}}, "utm_source=x"],
)
def test_the_checkout_api_refuses_unknown_or_oversized_tracking(api_client, gateway, tracking):
    plan = PlanFactory()
    response = api_client.post("/api/checkout/process", {**VALID, "plan_id": plan.pk, "tracking": tracking}, format="json")
    assert response.status_code == 400
    assert "tracking" in response.json()["error"]["fields"]
    assert not Checkout.objects.exists()


def _tracked(source, campaign, **kwargs):
    touch = {"utm_source": source, "utm_campaign": campaign}
    return CheckoutFactory(tracking={"first": touch, "last": touch}, **kwargs)


def test_the_checkout_admin_shows_filters_and_exports_the_source(admin_client):
    ig = _tracked("instagram", "bf")
    _tracked("google", "search")
    changelist = reverse("admin:billing_checkout_changelist")

    page = admin_client.get(changelist)
    assert page.status_code == 200
    assert b"utm_source" in page.content and b"?utm_source=instagram" in page.content

    filtered = admin_client.get(changelist, {"utm_source": "instagram"})
    assert list(filtered.context["cl"].queryset) == [ig]
    by_campaign = admin_client.get(changelist, {"utm_campaign": "bf"})
    assert list(by_campaign.context["cl"].queryset) == [ig]

    detail = admin_client.get(reverse("admin:billing_checkout_change", args=[ig.pk]))
    assert b"instagram" in detail.content

    export = admin_client.post(changelist, {"action": "export_csv", "_selected_action": [ig.pk]})
    rows = list(csv.reader(io.StringIO(b"".join(export.streaming_content).decode())))
    header, row = rows[0], rows[1]
    assert row[header.index("utm_source (last)")] == "instagram"
    assert row[header.index("utm_campaign (first)")] == "bf"


def test_the_dashboard_shows_revenue_and_conversion_by_source_in_fixed_queries(admin_client):
    from django.utils import timezone

    now = timezone.now()
    plan = PlanFactory(price_cents=1000)
    # given instagram/bf: 3 checkouts, 2 paid (one refunded later); google: 1 pending; 1 without source, paid
    _tracked("instagram", "bf", plan=plan, status=Checkout.Status.PAID, paid_at=now)
    _tracked("instagram", "bf", plan=plan, status=Checkout.Status.REFUNDED, paid_at=now)
    _tracked("instagram", "bf", plan=plan)
    _tracked("google", "search", plan=plan)
    CheckoutFactory(plan=plan, status=Checkout.Status.PAID, paid_at=now)

    figures = get_finance_figures(now=now)
    rows = {(r.utm_source, r.utm_campaign): r for r in figures.by_source}
    assert (rows["instagram", "bf"].checkouts, rows["instagram", "bf"].paid, rows["instagram", "bf"].revenue_cents) == (3, 2, 1000)
    assert rows["instagram", "bf"].conversion_pct == 66.7
    assert (rows["google", "search"].paid, rows["google", "search"].revenue_cents) == (0, 0)
    assert rows["", ""].revenue_cents == 1000

    # the number of queries does not grow with the number of sources
    with CaptureQueriesContext(connection) as few:
        get_finance_figures(now=now)
    for n in range(20):
        _tracked(f"src{n}", f"c{n}", plan=plan, status=Checkout.Status.PAID, paid_at=now)
    with CaptureQueriesContext(connection) as many:
        assert len(get_finance_figures(now=now).by_source) == 23
    assert len(many.captured_queries) == len(few.captured_queries)

    page = admin_client.get(reverse("admin:billing_financedashboard_changelist"))
    assert b"fin-by-source" in page.content and b"instagram" in page.content and b"66,7%" in page.content
