import pytest

from tests.factories import PlanFactory

pytestmark = pytest.mark.django_db


def test_it_lists_active_plans_in_display_order(api_client):
    second = PlanFactory(name="Trimestral", price_cents=7990, duration_days=90, display_order=2)
    first = PlanFactory(name="Mensal", price_cents=2990, display_order=1, checkout_url="https://pay.example.com/x")
    PlanFactory(name="Antigo", is_active=False)

    response = api_client.get("/api/plans")

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert [p["id"] for p in body["results"]] == [first.pk, second.pk]
    plan = body["results"][0]
    assert plan["price"] == 2990 and plan["price_display"] == "R$ 29,90"
    assert plan["benefits"] == [{"title": "Acesso total", "subtitle": "Todos os criadores", "icon": "star"}]
    assert plan["checkout_url"] == "https://pay.example.com/x"
    assert set(plan) >= {"id", "name", "price", "price_display", "duration_days", "benefits", "cta_text",
                         "accepts_pix", "accepts_card", "checkout_url"}
    assert "csrftoken" in response.cookies


def test_its_query_count_is_fixed(api_client, django_assert_max_num_queries):
    PlanFactory.create_batch(5)
    with django_assert_max_num_queries(2):
        api_client.get("/api/plans")


def test_the_schema_documents_the_billing_endpoints(api_client):
    response = api_client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    text = response.content.decode()
    for path in ("/api/plans", "/api/me/subscription", "/api/me/subscription/cancel", "/api/me/subscription/change-plan"):
        assert path in text
    assert "5997" in text  # the upgrade example
