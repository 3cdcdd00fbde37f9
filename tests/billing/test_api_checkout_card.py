"""POST /api/checkout/card and the card parts of /api/checkout/process, /api/plans, /api/me/subscription, /api/me/card/remove."""

import pytest
from prometheus_client import REGISTRY

from billing.models import CardAttempt, Checkout
from tests.billing.cardkit import APPROVED, PROCESSING, REFUSED_NO_FUNDS, card_checkout
from tests.factories import PlanFactory, UserFactory

pytestmark = pytest.mark.django_db


def _card(api_client, checkout, card_hash, installments=1):
    return api_client.post(
        "/api/checkout/card",
        {"checkout_id": str(checkout.public_id), "card_hash": card_hash, "installments": installments},
        format="json",
    )


def _buyer(plan, **extra):
    return {
        "plan_id": plan.pk, "name": "Ana Souza", "email": "ana@example.com", "cpf": "529.982.247-25",
        "phone": "(11) 98765-4321", "birth_date": "1990-05-17", **extra,
    }


def test_a_paid_card_answers_the_transaction_the_card_and_the_installments(api_client, card_junglepay):
    checkout = card_checkout()

    response = _card(api_client, checkout, APPROVED, installments=3)

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "paid"
    assert body["card"] == {"brand": "visa", "last_digits": "4242"}
    assert body["installments"] == 3
    assert body["checkout_id"] == str(checkout.public_id)
    assert body["transaction_id"] == CardAttempt.objects.get(checkout=checkout).transaction_id


def test_a_processing_card_answers_processing(api_client, card_junglepay):
    response = _card(api_client, card_checkout(), PROCESSING)

    assert response.json()["status"] == "processing"


def test_a_refusal_is_a_402_card_refused_with_the_banks_reason(api_client, card_junglepay):
    checkout = card_checkout()

    response = _card(api_client, checkout, REFUSED_NO_FUNDS)

    assert response.status_code == 402
    error = response.json()["error"]
    assert error["code"] == "card_refused"
    assert error["message"]
    # the checkout stays payable, by PIX too
    assert api_client.post("/api/checkout/pix", {"checkout_id": str(checkout.public_id)}, format="json").status_code == 200


def test_a_refusal_is_counted_for_metrics_by_its_code_once_committed(api_client, card_junglepay, django_capture_on_commit_callbacks):
    checkout = card_checkout()
    before = REGISTRY.get_sample_value("creatorflix_card_refusals_total", {"code": "51"}) or 0

    with django_capture_on_commit_callbacks(execute=True):
        assert _card(api_client, checkout, REFUSED_NO_FUNDS).status_code == 402

    assert REGISTRY.get_sample_value("creatorflix_card_refusals_total", {"code": "51"}) == before + 1


def test_installments_above_the_plans_maximum_are_a_400_naming_installments(api_client, card_junglepay):
    response = _card(api_client, card_checkout(), APPROVED, installments=4)

    assert response.status_code == 400
    assert "installments" in response.json()["error"]["fields"]


def test_process_takes_card_with_installments_and_keeps_the_amount(api_client, card_junglepay):
    plan = PlanFactory(price_cents=23990, accepts_card=True, max_installments=3)

    response = api_client.post("/api/checkout/process", _buyer(plan, payment_method="card", installments=3), format="json")

    assert response.status_code == 201, response.json()
    assert response.json()["total_amount"] == 23990
    checkout = Checkout.objects.get(public_id=response.json()["checkout_id"])
    assert (checkout.payment_method, checkout.installments) == ("card", 3)


def test_process_refuses_card_on_a_plan_without_card_and_installments_above_the_maximum(api_client, card_junglepay):
    pix_only = PlanFactory(accepts_card=False)
    three = PlanFactory(accepts_card=True, max_installments=3)

    no_card = api_client.post("/api/checkout/process", _buyer(pix_only, payment_method="card"), format="json")
    too_many = api_client.post("/api/checkout/process", _buyer(three, payment_method="card", installments=4), format="json")

    assert no_card.status_code == 400 and "payment_method" in no_card.json()["error"]["fields"]
    assert too_many.status_code == 400 and "installments" in too_many.json()["error"]["fields"]


def test_plans_list_max_installments(api_client, db):
    PlanFactory(accepts_card=True, max_installments=3)

    [plan] = api_client.get("/api/plans").json()["results"] if isinstance(api_client.get("/api/plans").json(), dict) else api_client.get("/api/plans").json()

    assert plan["max_installments"] == 3


def test_my_subscription_shows_the_saved_card_and_automatic_renewal_and_remove_forgets_it(api_client, card_junglepay):
    user = UserFactory()
    checkout = card_checkout(user=user)
    _card(api_client, checkout, APPROVED)
    api_client.force_authenticate(user)

    mine = api_client.get("/api/me/subscription").json()
    removed = api_client.post("/api/me/card/remove")
    after = api_client.get("/api/me/subscription").json()

    assert mine["payment_method"] == "card"
    assert mine["card"] == {"brand": "visa", "last_digits": "4242", "exp_month": 12, "exp_year": 2030}
    assert mine["auto_renew"] is True
    assert removed.status_code == 200
    assert removed.json() == {"card": None, "auto_renew": False}
    assert after["card"] is None and after["auto_renew"] is False


def test_the_card_hash_is_never_stored_nor_logged(api_client, card_junglepay, caplog):
    checkout = card_checkout()

    _card(api_client, checkout, APPROVED)
    _card(api_client, card_checkout(), REFUSED_NO_FUNDS)

    assert APPROVED not in caplog.text and REFUSED_NO_FUNDS not in caplog.text
    for attempt in CardAttempt.objects.all():
        assert APPROVED not in str(attempt.gateway_response or "") and APPROVED not in repr(attempt.__dict__)


def test_the_checkout_page_loads_the_tokenizer_with_the_gateways_public_key_and_only_it_allows_its_origin(client, card_junglepay):
    plan = PlanFactory(accepts_card=True, max_installments=3)
    origin = card_junglepay.url.rsplit("/v1", 1)[0]

    page = client.get(f"/checkout/{plan.pk}/")
    plans = client.get("/plans/")

    assert f'<script src="{card_junglepay.url}/js"' in page.content.decode()
    assert "pk_test_cards" in page.content.decode()
    assert origin in page["Content-Security-Policy"]
    assert origin not in plans["Content-Security-Policy"]


def test_a_plan_without_card_loads_no_tokenizer(client, card_junglepay):
    plan = PlanFactory(accepts_card=False)

    page = client.get(f"/checkout/{plan.pk}/")

    assert "card-form" not in page.content.decode()
    assert card_junglepay.url.rsplit("/v1", 1)[0] not in page["Content-Security-Policy"]


def test_the_admin_shows_a_card_checkout_and_a_subscriptions_card_and_attempts(client, api_client, card_junglepay):
    from django.urls import reverse

    from tests.billing.cardkit import REFUSED_NO_FUNDS

    checkout = card_checkout(user=UserFactory())
    _card(api_client, checkout, REFUSED_NO_FUNDS)
    _card(api_client, checkout, APPROVED, installments=2)
    checkout.refresh_from_db()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))

    checkout_page = client.get(reverse("admin:billing_checkout_change", args=[checkout.pk])).content.decode()
    subscription_page = client.get(reverse("admin:billing_subscription_change", args=[checkout.subscription_id])).content.decode()

    assert "Visa •••• 4242" in checkout_page and "Saldo insuficiente" in checkout_page
    assert "Visa •••• 4242" in subscription_page

