"""Browser pixels load only after consent, each with the consent it needs, under a CSP widened for them alone (contract §4, §5)."""

import json
import re

import pytest
from django.core.cache import cache

from catalog.models import Creator
from integrations.models import TrackingPixels
from integrations.pixels import pixel_ids
from tests.factories import PlanFactory

pytestmark = pytest.mark.django_db

PIXEL_CONFIG = re.compile(r'<script id="pixel-config" type="application/json">(.*?)</script>', re.S)


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def pixels(db):
    return TrackingPixels.objects.create(pk=1, meta_pixel_id="123456789012345", ga4_measurement_id="G-AB12CD34", tiktok_pixel_id="CABCDEF123")


def _consent(client, choice, **flags):
    client.post("/cookies/", {"choice": choice, **{k: "on" for k, v in flags.items() if v}})


def _loaded(response) -> dict:
    match = PIXEL_CONFIG.search(response.content.decode())
    return json.loads(match.group(1)) if match else {}


def _csp(response, directive) -> list[str]:
    for part in response["Content-Security-Policy"].split(";"):
        name, *sources = part.split()
        if name == directive:
            return sources
    return []


def test_nothing_loads_and_the_policy_stays_closed_before_the_visitor_chooses(client, pixels):
    response = client.get("/")

    assert _loaded(response) == {}
    assert "pixels.js" not in response.content.decode()
    assert _csp(response, "script-src") == ["'self'"]
    assert _csp(response, "connect-src") == ["'self'"]


def test_accepting_all_loads_the_three_pixels_and_opens_the_policy_to_their_origins_only(client, pixels):
    _consent(client, "accept")

    response = client.get("/")

    loaded = _loaded(response)
    assert {name: p["id"] for name, p in loaded.items()} == {
        "meta": "123456789012345", "ga4": "G-AB12CD34", "tiktok": "CABCDEF123",
    }
    assert loaded["ga4"]["script"] == "https://www.googletagmanager.com/gtag/js?id=G-AB12CD34"
    assert loaded["tiktok"]["script"] == "https://analytics.tiktok.com/i18n/pixel/events.js?sdkid=CABCDEF123&lib=ttq"
    assert 'src="/static/js/pixels.js"' in response.content.decode()
    assert _csp(response, "script-src") == [
        "'self'", "https://analytics.tiktok.com", "https://connect.facebook.net", "https://www.googletagmanager.com",
    ]
    assert "https://www.facebook.com" in _csp(response, "connect-src")
    assert "https://*.google-analytics.com" in _csp(response, "connect-src")
    assert "'unsafe-inline'" not in response["Content-Security-Policy"]


@pytest.mark.parametrize(
    ("analytics", "marketing", "expected"),
    [(True, False, {"ga4"}), (False, True, {"meta", "tiktok"}), (False, False, set())],
)
def test_each_pixel_needs_its_own_consent(client, pixels, analytics, marketing, expected):
    _consent(client, "choose", analytics=analytics, marketing=marketing)

    response = client.get("/")

    assert set(_loaded(response)) == expected
    assert ("https://connect.facebook.net" in _csp(response, "script-src")) == ("meta" in expected)
    assert ("https://www.googletagmanager.com" in _csp(response, "script-src")) == ("ga4" in expected)


def test_a_consented_visitor_loads_nothing_when_no_pixel_is_configured(client):
    _consent(client, "accept")

    response = client.get("/")

    assert _loaded(response) == {} and _csp(response, "script-src") == ["'self'"]


def test_the_json_api_and_the_admin_keep_their_policy(client, pixels, admin_client):
    _consent(client, "accept")
    assert _csp(client.get("/api/plans"), "script-src") == ["'self'"]
    admin_client.cookies = client.cookies
    assert "connect.facebook.net" not in admin_client.get("/admin/")["Content-Security-Policy"]


def test_pages_tell_the_pixels_what_they_show(client, pixels):
    _consent(client, "accept")
    client.post("/accounts/age/gate/", {"next": "/"})
    creator = Creator.objects.create(name="Luna", slug="luna")
    plan = PlanFactory(price_cents=2990)

    creator_page = client.get(f"/models/{creator.slug}/").content.decode()
    checkout_page = client.get(f"/checkout/{plan.pk}/").content.decode()

    assert 'data-pixel-event="ViewContent" data-pixel-content-id="creator:luna"' in creator_page
    assert f'data-pixel-event="InitiateCheckout" data-pixel-content-id="plan:{plan.pk}" data-pixel-value="2990"' in checkout_page


def test_a_visitor_without_consent_gets_no_page_event_markup(client, pixels):
    client.post("/accounts/age/gate/", {"next": "/"})
    creator = Creator.objects.create(name="Luna", slug="luna")
    assert "data-pixel-event" not in client.get(f"/models/{creator.slug}/").content.decode()


def test_the_anonymous_page_cache_keeps_banner_and_pixels_per_choice(client, pixels, settings):
    # given: the cached creator page, first rendered for a visitor who has not chosen
    settings.CATALOG_PAGE_CACHE_SECONDS = 300
    creator = Creator.objects.create(name="Luna", slug="luna")
    undecided = client
    undecided.post("/accounts/age/gate/", {"next": "/"})
    first = undecided.get(f"/models/{creator.slug}/").content.decode()
    assert 'data-testid="consent-banner"' in first and "pixel-config" not in first

    # when: a visitor who accepted and one who rejected open the same page
    accepted, rejected = type(client)(), type(client)()
    for visitor, choice in ((accepted, "accept"), (rejected, "reject")):
        visitor.post("/accounts/age/gate/", {"next": "/"})
        _consent(visitor, choice)
    accepted_page = accepted.get(f"/models/{creator.slug}/")
    rejected_page = rejected.get(f"/models/{creator.slug}/").content.decode()

    # then: each gets the page for their choice, never another visitor's
    assert 'data-testid="consent-banner"' not in accepted_page.content.decode()
    assert set(_loaded(accepted_page)) == {"meta", "ga4", "tiktok"}
    assert "connect.facebook.net" in accepted_page["Content-Security-Policy"]
    assert 'data-testid="consent-banner"' not in rejected_page and "pixel-config" not in rejected_page
    assert 'data-testid="consent-banner"' in undecided.get(f"/models/{creator.slug}/").content.decode()


def test_the_admin_checks_pixel_ids_and_pages_use_a_saved_id_at_once(admin_client, pixels, django_capture_on_commit_callbacks):
    client = admin_client
    _consent(client, "accept")
    assert _loaded(client.get("/"))["meta"]["id"] == "123456789012345"  # now cached
    form = {"meta_pixel_id": "987654321", "ga4_measurement_id": "G-AB12CD34", "tiktok_pixel_id": "CABCDEF123"}

    refused = admin_client.post(f"/admin/integrations/trackingpixels/{pixels.pk}/change/", {**form, "meta_pixel_id": '1"><script>'})
    assert refused.status_code == 200 and "meta_pixel_id" in refused.context["adminform"].form.errors

    with django_capture_on_commit_callbacks(execute=True):
        saved = admin_client.post(f"/admin/integrations/trackingpixels/{pixels.pk}/change/", form)
    assert saved.status_code == 302

    assert _loaded(client.get("/"))["meta"]["id"] == "987654321"


def test_pixel_ids_are_read_once_per_cache_period(pixels, django_assert_num_queries):
    pixel_ids()
    with django_assert_num_queries(0):
        assert pixel_ids().meta == "123456789012345"
