from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from billing.models import Checkout, Subscription
from billing.services import sweep_subscriptions
from tests.factories import PlanFactory, SubscriptionFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def subscriber():
    now = timezone.now()
    plan = PlanFactory(name="Mensal", price_cents=2990, duration_days=30)
    return SubscriptionFactory(plan=plan, start_date=now - timedelta(days=10), end_date=now + timedelta(days=20))


def _client(user, csrf=False):
    client = APIClient(enforce_csrf_checks=csrf)
    client.force_login(user)
    return client


def test_anonymous_gets_401_or_403(api_client):
    response = api_client.get("/api/me/subscription")
    assert response.status_code in (401, 403)
    assert response.json()["error"]["code"] in ("not_authenticated", "permission_denied")


def test_it_answers_null_without_a_subscription():
    response = _client(UserFactory()).get("/api/me/subscription")
    assert response.status_code == 200
    assert response.content == b"null"


def test_it_shows_the_live_subscription_with_its_renewal_charge(subscriber):
    subscriber.end_date = timezone.now() + timedelta(days=2)
    subscriber.save()
    sweep_subscriptions()

    body = _client(subscriber.user).get("/api/me/subscription").json()

    assert body["status"] == "active" and body["has_access"] is True
    assert body["plan"]["price"] == 2990
    renewal = Checkout.objects.get(purpose=Checkout.Purpose.RENEWAL)
    assert body["renewal_checkout"]["checkout_id"] == str(renewal.public_id)
    assert body["renewal_checkout"]["total_amount"] == 2990


def test_cancel_keeps_access_until_the_end(subscriber):
    response = _client(subscriber.user).post("/api/me/subscription/cancel", {"reason": "Sem tempo"}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert body["cancel_at_period_end"] is True and body["has_access"] is True
    subscriber.refresh_from_db()
    assert subscriber.cancel_reason == "Sem tempo"


def test_session_writes_need_the_csrf_token(subscriber):
    client = _client(subscriber.user, csrf=True)
    refused = client.post("/api/me/subscription/cancel", {}, format="json")
    assert refused.status_code == 403

    client.get("/api/me/subscription")  # sets the csrftoken cookie
    token = client.cookies["csrftoken"].value
    accepted = client.post("/api/me/subscription/cancel", {}, format="json", HTTP_X_CSRFTOKEN=token)
    assert accepted.status_code == 200


def test_cancel_without_a_live_subscription_is_404():
    response = _client(UserFactory()).post("/api/me/subscription/cancel", {}, format="json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "no_subscription"


def test_change_plan_upgrade_returns_the_prorated_charge(subscriber):
    quarterly = PlanFactory(price_cents=7990, duration_days=90)

    response = _client(subscriber.user).post("/api/me/subscription/change-plan", {"plan_id": quarterly.pk}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert body["kind"] == "upgrade"
    # about 20 of 30 days left: 7990 - 2990 × 20/30 ≈ 5997 (seconds have passed since the fixture)
    assert 5990 <= body["checkout"]["total_amount"] <= 6000
    assert body["checkout"]["credit_amount"] + body["checkout"]["total_amount"] == 7990


def test_change_plan_downgrade_is_scheduled(subscriber):
    cheaper = PlanFactory(price_cents=990, duration_days=7)
    body = _client(subscriber.user).post("/api/me/subscription/change-plan", {"plan_id": cheaper.pk}, format="json").json()
    assert body["kind"] == "downgrade" and body["checkout"] is None
    assert body["subscription"]["next_plan"]["id"] == cheaper.pk
    assert Subscription.objects.get(pk=subscriber.pk).plan_id == subscriber.plan_id


def test_change_plan_to_an_unknown_plan_is_404(subscriber):
    response = _client(subscriber.user).post("/api/me/subscription/change-plan", {"plan_id": 999999}, format="json")
    assert response.status_code == 404
    assert "error" in response.json()


def test_change_plan_validates_its_input(subscriber):
    response = _client(subscriber.user).post("/api/me/subscription/change-plan", {"plan_id": "x"}, format="json")
    assert response.status_code == 400
    assert "plan_id" in response.json()["error"]["fields"]
