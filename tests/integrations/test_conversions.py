"""Server-side Purchase conversions (contract §5) against `responses` standing in for Meta, GA4 and TikTok."""

import hashlib
from unittest import mock

import pytest
import responses
from django.db import connection
from django.urls import reverse
from responses import matchers

from billing import services
from billing.models import Checkout, Subscription
from integrations.conversions import PlatformError, send_purchase, send_purchase_task
from integrations.models import TrackingPixels
from tests.factories import PlanFactory, UserFactory

pytestmark = pytest.mark.django_db

META = "https://graph.facebook.com/v19.0/1234567890/events"
GA4 = "https://www.google-analytics.com/mp/collect"
TIKTOK = "https://business-api.tiktok.com/open_api/v1.3/event/track/"


def sha(value):
    return hashlib.sha256(value.encode()).hexdigest()


@pytest.fixture
def pixels():
    return TrackingPixels.objects.create(
        pk=1, meta_pixel_id="1234567890", meta_access_token="EAAB-meta-token",
        ga4_measurement_id="G-TEST123", ga4_api_secret="ga4-secret",
        tiktok_pixel_id="CTIKTOK123", tiktok_access_token="tt-token",
    )


def _checkout(consent=(True, True)):
    """A checkout of a buyer who accepted analytics and marketing cookies (unless `consent` says otherwise)."""
    return services.create_checkout(
        plan=PlanFactory(price_cents=2990), customer_name="Ana Souza", customer_email=" Ana@Example.com ",
        customer_phone="(11) 98765-4321", user=UserFactory(email="ana@example.com"),
        tracking={"last": {"utm_source": "instagram", "fbclid": "IwAR0abc", "ttclid": "E.C.P.tt"}},
        consent=consent,
    )


def _register(checkout, status=200):
    event_id = str(checkout.public_id)
    event_time = int(checkout.paid_at.timestamp())
    fbc = f"fb.1.{int(checkout.created_at.timestamp() * 1000)}.IwAR0abc"
    meta = responses.post(
        META,
        status=status,
        json={"events_received": 1},
        match=[
            matchers.query_param_matcher({"access_token": "EAAB-meta-token"}),
            matchers.json_params_matcher(
                {
                    "data": [
                        {
                            "event_name": "Purchase",
                            "event_time": event_time,
                            "event_id": event_id,
                            "action_source": "website",
                            "user_data": {"em": [sha("ana@example.com")], "ph": [sha("5511987654321")], "fbc": fbc},
                            "custom_data": {"currency": "BRL", "value": 29.9},
                        }
                    ]
                }
            ),
        ],
    )
    ga4 = responses.post(
        GA4,
        status=204,
        match=[
            matchers.query_param_matcher({"measurement_id": "G-TEST123", "api_secret": "ga4-secret"}),
            matchers.json_params_matcher(
                {
                    "client_id": event_id,
                    "events": [{"name": "purchase", "params": {"transaction_id": event_id, "currency": "BRL", "value": 29.9}}],
                }
            ),
        ],
    )
    tiktok = responses.post(
        TIKTOK,
        json={"code": 0, "message": "OK"},
        match=[
            matchers.header_matcher({"Access-Token": "tt-token"}),
            matchers.json_params_matcher(
                {
                    "event_source": "web",
                    "event_source_id": "CTIKTOK123",
                    "data": [
                        {
                            "event": "CompletePayment",
                            "event_time": event_time,
                            "event_id": event_id,
                            "user": {"email": sha("ana@example.com"), "phone": sha("+5511987654321"), "ttclid": "E.C.P.tt"},
                            "properties": {"currency": "BRL", "value": 29.9},
                        }
                    ],
                }
            ),
        ],
    )
    return meta, ga4, tiktok


def _pay(checkout, django_capture_on_commit_callbacks, *, register_status=200):
    # The payment time is known only at activation: the fakes are registered for it, then the
    # tasks queued after commit run (in-process, as Celery does in tests).
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.activate_checkout(checkout=checkout)
    checkout.refresh_from_db()
    fakes = _register(checkout, status=register_status)
    for callback in callbacks:
        callback()
    return fakes


@responses.activate
def test_purchase_goes_to_meta_ga4_and_tiktok_with_their_documented_payloads(pixels, django_capture_on_commit_callbacks):
    checkout = _checkout()
    meta, ga4, tiktok = _pay(checkout, django_capture_on_commit_callbacks)
    assert (meta.call_count, ga4.call_count, tiktok.call_count) == (1, 1, 1)


@responses.activate
def test_an_unpaid_checkout_sends_no_purchase(pixels, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        _checkout()
    assert len(responses.calls) == 0


@responses.activate
def test_a_platform_that_is_down_delays_its_event_never_the_payment(pixels, django_capture_on_commit_callbacks):
    checkout = _checkout()
    queued = []
    with mock.patch.object(send_purchase_task, "apply_async", side_effect=lambda **kw: queued.append(kw["kwargs"])):
        _pay(checkout, django_capture_on_commit_callbacks, register_status=503)
    # the payment stands whatever the platforms answer
    checkout.refresh_from_db()
    assert checkout.status == Checkout.Status.PAID
    assert Subscription.objects.get().status == Subscription.Status.ACTIVE
    # one task per platform: Meta's fails (the task retries it with backoff), the others are done
    outcomes = {}
    for kw in queued:
        try:
            outcomes[kw["platform"]] = send_purchase(**kw)
        except PlatformError:
            outcomes[kw["platform"]] = "retry"
    assert outcomes == {"meta": "retry", "ga4": 204, "tiktok": 200}
    assert PlatformError in send_purchase_task.autoretry_for and send_purchase_task.max_retries >= 10


# The buyer's cookie choice (legal.consent) governs the server-side events as it governs the pixels:
# they carry the same data (hashed e-mail and phone, click ids) to the same platforms.


@responses.activate
def test_a_buyer_who_refused_marketing_cookies_sends_nothing_to_meta_or_tiktok(pixels, django_capture_on_commit_callbacks):
    checkout = _checkout(consent=(True, False))
    meta, ga4, tiktok = _pay(checkout, django_capture_on_commit_callbacks)
    assert (meta.call_count, ga4.call_count, tiktok.call_count) == (0, 1, 0)


@responses.activate
def test_a_buyer_who_accepted_only_essential_cookies_sends_no_purchase(pixels, django_capture_on_commit_callbacks):
    checkout = _checkout(consent=(False, False))
    _pay(checkout, django_capture_on_commit_callbacks)
    assert len(responses.calls) == 0


@responses.activate
def test_a_renewal_follows_the_cookie_choice_made_at_the_purchase(pixels, django_capture_on_commit_callbacks):
    # given: a purchase by a buyer who refused marketing cookies, paid
    first = _checkout(consent=(True, False))
    with django_capture_on_commit_callbacks(execute=False):
        subscription = services.activate_checkout(checkout=first)
    renewal = services.create_checkout(
        plan=first.plan, customer_name="Ana Souza", customer_email="ana@example.com", user=subscription.user,
        purpose=Checkout.Purpose.RENEWAL, subscription=subscription,
    )

    # when: its renewal is paid (no browser: its choice is the purchase's)
    meta, ga4, tiktok = _pay(renewal, django_capture_on_commit_callbacks)

    # then
    assert (meta.call_count, tiktok.call_count) == (0, 0) and ga4.call_count == 1


def test_the_checkout_api_records_the_buyers_cookie_choice(api_client, settings):
    from tests.billing.paymentkit import sandbox

    settings.DEBUG, settings.SANDBOX_GATEWAY_ALLOWED = False, True
    sandbox()
    plan = PlanFactory()
    body = {"plan_id": plan.pk, "payment_method": "pix", "order_bump_ids": [], "name": "Ana Souza", "email": "ana@example.com",
            "cpf": "529.982.247-25", "phone": "(11) 98765-4321", "birth_date": "1990-05-17"}

    api_client.cookies["cf_consent"] = "visitor1.10"  # analytics yes, marketing no
    accepted = api_client.post("/api/checkout/process", body, format="json")
    del api_client.cookies["cf_consent"]  # never decided: neither
    undecided = api_client.post("/api/checkout/process", {**body, "email": "bia@example.com"}, format="json")

    assert accepted.status_code == undecided.status_code == 201
    first = Checkout.objects.get(public_id=accepted.json()["checkout_id"])
    second = Checkout.objects.get(public_id=undecided.json()["checkout_id"])
    assert (first.analytics_consent, first.marketing_consent) == (True, False)
    assert (second.analytics_consent, second.marketing_consent) == (False, False)


@responses.activate
def test_without_configured_platforms_nothing_is_sent(django_capture_on_commit_callbacks):
    checkout = _checkout()
    with django_capture_on_commit_callbacks(execute=True):
        services.activate_checkout(checkout=checkout)
    assert len(responses.calls) == 0


def test_the_platform_secrets_are_write_only_and_encrypted(admin_client):
    add = reverse("admin:integrations_trackingpixels_add")
    response = admin_client.post(
        add,
        {"meta_pixel_id": "123", "new_meta_access_token": "EAAB-very-secret-token", "ga4_measurement_id": "G-1",
         "new_ga4_api_secret": "ga4-very-secret", "tiktok_pixel_id": "", "new_tiktok_access_token": ""},
    )
    assert response.status_code == 302, response.content
    pixels = TrackingPixels.current()
    assert pixels.meta_access_token == "EAAB-very-secret-token" and pixels.platforms() == ["meta", "ga4"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT meta_access_token, ga4_api_secret FROM integrations_trackingpixels")
        stored = cursor.fetchone()
    assert "EAAB-very-secret-token" not in stored[0] and "ga4-very-secret" not in stored[1]
    page = admin_client.get(reverse("admin:integrations_trackingpixels_change", args=[1]))
    assert b"EAAB-very-secret-token" not in page.content and b"ga4-very-secret" not in page.content
    # left blank, the stored secret is kept
    admin_client.post(
        reverse("admin:integrations_trackingpixels_change", args=[1]),
        {"meta_pixel_id": "456", "new_meta_access_token": "", "ga4_measurement_id": "G-1", "new_ga4_api_secret": "",
         "tiktok_pixel_id": "", "new_tiktok_access_token": ""},
    )
    pixels = TrackingPixels.current()
    assert (pixels.meta_pixel_id, pixels.meta_access_token) == ("456", "EAAB-very-secret-token")
