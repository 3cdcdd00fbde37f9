"""Checkout API (contract §3) on the sandbox gateway: process → pix → poll, and the simulate buttons."""

import re
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from billing.access import user_has_access
from billing.models import Checkout, PaymentGateway, Subscription, WebhookEvent
from billing.pix import is_valid_br_code
from tests.billing.paymentkit import (
    sandbox,
)
from tests.factories import (
    CheckoutFactory,
    OrderBumpFactory,
    PlanFactory,
    SubscriptionFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

VALID = {"payment_method": "pix", "order_bump_ids": [], "name": "Ana Souza", "email": "ana@example.com", "cpf": "529.982.247-25", "phone": "(11) 98765-4321", "birth_date": "1990-05-17"}


@pytest.fixture
def gateway(settings):
    settings.DEBUG = False
    settings.SANDBOX_GATEWAY_ALLOWED = True
    return sandbox()


def process(api_client, plan, **overrides):
    return api_client.post("/api/checkout/process", {**VALID, "plan_id": plan.pk, **overrides}, format="json")


def test_it_computes_the_total_on_the_server_and_ignores_a_client_total(api_client, gateway):
    plan = PlanFactory(price_cents=2990)
    bump = OrderBumpFactory(price_cents=990)

    response = process(api_client, plan, order_bump_ids=[bump.pk], total_amount=1, total=1, price=1)

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["total_amount"] == 3980 and body["status"] == "pending"
    assert uuid.UUID(body["checkout_id"])
    assert set(body) == {"checkout_id", "total_amount", "discount_amount", "status"}
    assert Checkout.objects.get(public_id=body["checkout_id"]).total_cents == 3980


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("cpf", "529.982.247-24"),  # wrong check digit
        ("cpf", "111.111.111-11"),  # all-equal digits pass the checksum but are not a CPF
        ("cpf", "1234"),
        ("email", "not-an-email"),
        ("phone", "98765-4321"),  # no DDD
        ("phone", "(00) 98765-4321"),  # no such DDD
        ("name", ""),
    ],
)
def test_it_rejects_invalid_customer_data_beside_the_field(api_client, gateway, field, value):
    response = process(api_client, PlanFactory(), **{field: value})

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid" and field in error["fields"]
    assert not Checkout.objects.exists()


def test_an_empty_form_gets_every_fields_error_at_once_in_the_buyers_words(api_client, gateway):
    blank = {"name": "", "email": "", "cpf": "", "phone": "", "birth_date": ""}

    response = process(api_client, PlanFactory(), HTTP_ACCEPT_LANGUAGE="pt-br", **blank)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid" and error["message"]  # contract §3's shape
    assert set(error["fields"]) == set(blank)
    assert error["fields"]["birth_date"] == ["Informe sua data de nascimento."]
    assert error["fields"]["cpf"] == ["Informe seu CPF."]
    assert not any("branco" in text for texts in error["fields"].values() for text in texts)


def test_an_under_age_buyer_is_told_with_the_other_fields_errors(api_client, gateway, settings):
    # the age is checked with the other fields, not only once they pass
    ten_years_old = (timezone.localdate() - timedelta(days=10 * 365)).isoformat()

    response = process(api_client, PlanFactory(), cpf="111.111.111-11", birth_date=ten_years_old)

    assert response.status_code == 400
    fields = response.json()["error"]["fields"]
    assert set(fields) == {"cpf", "birth_date"}
    assert str(settings.MIN_AGE) in fields["birth_date"][0]
    assert not Checkout.objects.exists()


def test_it_rejects_an_inactive_plan_a_refused_method_and_an_inactive_bump(api_client, gateway):
    assert process(api_client, PlanFactory(is_active=False)).json()["error"]["code"] == "plan_unavailable"
    assert process(api_client, PlanFactory(accepts_card=False), payment_method="card").json()["error"]["code"] == "method_not_accepted"
    bump = OrderBumpFactory(is_active=False)
    assert process(api_client, PlanFactory(), order_bump_ids=[bump.pk]).json()["error"]["code"] == "bump_unavailable"
    assert process(api_client, PlanFactory(), plan_id=999999).status_code == 400
    assert not Checkout.objects.exists()


def test_pix_twice_returns_the_same_charge(api_client, gateway):
    checkout_id = process(api_client, PlanFactory()).json()["checkout_id"]

    first = api_client.post("/api/checkout/pix", {"checkout_id": checkout_id}, format="json")
    second = api_client.post("/api/checkout/pix", {"checkout_id": checkout_id}, format="json")

    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    body = first.json()
    assert set(body) >= {"checkout_id", "transaction_id", "pix_code", "pix_qr_svg", "pix_url", "expires_at", "status"}
    assert is_valid_br_code(body["pix_code"])
    assert body["pix_qr_svg"].startswith("<svg") and "path" in body["pix_qr_svg"]
    assert body["expires_at"]


def test_pix_for_an_unknown_checkout_is_404(api_client, gateway):
    response = api_client.post("/api/checkout/pix", {"checkout_id": str(uuid.uuid4())}, format="json")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_the_sandbox_flow_end_to_end_gives_access(api_client, gateway, django_capture_on_commit_callbacks, mailoutbox):
    # given: a checkout by a visitor with no account, and its PIX charge
    plan = PlanFactory(duration_days=30)
    checkout_id = process(api_client, plan, email="nova@example.com").json()["checkout_id"]
    api_client.post("/api/checkout/pix", {"checkout_id": checkout_id}, format="json")
    assert api_client.get(f"/api/checkout/{checkout_id}").json()["status"] == "pending"

    # when: the buyer presses "simulate payment"
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post(f"/api/checkout/{checkout_id}/simulate", {"outcome": "paid"}, format="json")

    # then: it went through the webhook path, the checkout is paid and the new account has access
    assert response.status_code == 200, response.content
    assert response.json()["webhook_status"] == 200
    event = WebhookEvent.objects.get(provider="sandbox")
    assert event.outcome == WebhookEvent.Outcome.PROCESSED
    polled = api_client.get(f"/api/checkout/{checkout_id}").json()
    assert polled["status"] == "paid" and polled["paid_at"]
    # The paid checkout now belongs to the new account: a logged-out poller sees its status only.
    assert polled["subscription"] is None
    assert Checkout.objects.get(public_id=checkout_id).subscription.plan == plan
    user = Checkout.objects.get(public_id=checkout_id).user
    assert user.email == "nova@example.com"
    assert user_has_access(user)
    assert [m.to for m in mailoutbox] == [["nova@example.com"]] * 2  # the set-password e-mail and the receipt


def test_simulate_refused_expired_and_refund(api_client, gateway):
    user = UserFactory()
    api_client.force_login(user)

    def charged():
        checkout_id = process(api_client, PlanFactory(), email=user.email).json()["checkout_id"]
        api_client.post("/api/checkout/pix", {"checkout_id": checkout_id}, format="json")
        return checkout_id

    refused = charged()
    api_client.post(f"/api/checkout/{refused}/simulate", {"outcome": "refused"}, format="json")
    assert Checkout.objects.get(public_id=refused).status == Checkout.Status.FAILED

    expired = charged()
    api_client.post(f"/api/checkout/{expired}/simulate", {"outcome": "expired"}, format="json")
    assert Checkout.objects.get(public_id=expired).status == Checkout.Status.EXPIRED

    paid = charged()
    api_client.post(f"/api/checkout/{paid}/simulate", {"outcome": "paid"}, format="json")
    assert user_has_access(user)
    response = api_client.post(f"/api/checkout/{paid}/simulate", {"outcome": "refunded"}, format="json")
    assert response.json()["status"] == "refunded"
    assert not user_has_access(user)
    assert Subscription.objects.get(checkouts__public_id=paid).status == Subscription.Status.REFUNDED


def test_simulate_needs_a_charge_and_the_sandbox(api_client, gateway, settings):
    checkout_id = process(api_client, PlanFactory()).json()["checkout_id"]
    response = api_client.post(f"/api/checkout/{checkout_id}/simulate", {"outcome": "paid"}, format="json")
    assert response.status_code == 409 and response.json()["error"]["code"] == "no_charge"

    api_client.post("/api/checkout/pix", {"checkout_id": checkout_id}, format="json")
    settings.SANDBOX_GATEWAY_ALLOWED = False  # DEBUG is off too: the sandbox may not serve
    response = api_client.post(f"/api/checkout/{checkout_id}/simulate", {"outcome": "paid"}, format="json")
    assert response.status_code == 404
    assert Checkout.objects.get(public_id=checkout_id).status == Checkout.Status.PENDING


def test_simulate_is_refused_when_junglepay_is_active(api_client, gateway):
    checkout_id = process(api_client, PlanFactory()).json()["checkout_id"]
    api_client.post("/api/checkout/pix", {"checkout_id": checkout_id}, format="json")
    PaymentGateway.objects.filter(kind="sandbox").update(is_active=False)
    PaymentGateway.objects.create(kind="junglepay", secret_key="k", is_active=True)

    response = api_client.post(f"/api/checkout/{checkout_id}/simulate", {"outcome": "paid"}, format="json")

    assert response.status_code == 404
    assert not WebhookEvent.objects.exists()


def test_the_status_endpoint_exposes_no_sequential_ids(api_client, gateway, django_assert_max_num_queries):
    checkout_id = process(api_client, PlanFactory()).json()["checkout_id"]

    with django_assert_max_num_queries(2):
        body = api_client.get(f"/api/checkout/{checkout_id}").json()

    assert set(body) == {"checkout_id", "status", "total_amount", "paid_at", "subscription"}
    assert body["subscription"] is None
    assert api_client.get("/api/checkout/1").status_code == 404
    assert not re.search(r'"id"', str(body))


def test_checkout_has_a_ceiling_per_address(api_client, gateway, settings):
    # DRF reloads its settings on setting_changed; the fixture restores them afterwards.
    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "checkout_address": "3/min"}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}

    codes = [process(api_client, PlanFactory()).status_code for _ in range(4)]

    assert codes == [201, 201, 201, 429]


@pytest.fixture
def sandbox_gateway(settings):
    settings.DEBUG = False
    settings.SANDBOX_GATEWAY_ALLOWED = True
    return sandbox()


def test_a_logged_out_caller_sees_only_the_status_of_an_accounts_checkout(sandbox_gateway):
    # given: a paid checkout of a logged-in user's account
    user = UserFactory(email="ana@example.com", name="Ana Souza")
    subscription = SubscriptionFactory(user=user)
    checkout = CheckoutFactory(
        user=user, plan=subscription.plan, subscription=subscription, status=Checkout.Status.PAID, paid_at=timezone.now(),
        customer_email="ana@example.com", customer_name="Ana Souza",
    )
    owner = APIClient()
    owner.force_login(user)

    # when
    anonymous = APIClient().get(f"/api/checkout/{checkout.public_id}")
    own = owner.get(f"/api/checkout/{checkout.public_id}")

    # then
    assert anonymous.status_code == 200
    body = anonymous.json()
    assert body["status"] == "paid" and body["total_amount"] == checkout.total_cents and body["paid_at"]
    assert body["subscription"] is None
    assert "ana@example.com" not in anonymous.content.decode() and "Ana Souza" not in anonymous.content.decode()
    assert own.json()["subscription"]["plan"] == subscription.plan.name


def test_pix_for_a_logged_out_holder_answers_the_charge_and_nothing_of_the_customer(sandbox_gateway):
    # given: a renewal checkout of an account; its link was opened logged out (a renewal e-mail)
    user = UserFactory(email="ana@example.com", name="Ana Souza")
    subscription = SubscriptionFactory(user=user)
    checkout = CheckoutFactory(
        user=user, plan=subscription.plan, subscription=subscription, purpose=Checkout.Purpose.RENEWAL,
        customer_email="ana@example.com", customer_name="Ana Souza", customer_phone="11987654321",
    )

    # when
    response = APIClient().post("/api/checkout/pix", {"checkout_id": str(checkout.public_id)}, format="json")

    # then: payable, and the answer is the charge only
    assert response.status_code == 200, response.content
    assert set(response.json()) == {"checkout_id", "transaction_id", "pix_code", "pix_qr_svg", "pix_url", "expires_at", "status", "total_amount"}
    text = response.content.decode()
    for secret in ("ana@example.com", "Ana Souza", "52998224725", "11987654321"):
        assert secret not in text
