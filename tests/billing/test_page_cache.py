"""
The plans and checkout pages of visitors with no subscription come from the
cache (billing.page_cache), each answer with the visitor's own token and
form values; anyone with a subscription, and any change to what they show,
gets a fresh page.
"""

import pytest
from django.test import Client

from billing.models import Subscription
from tests.factories import PlanFactory, SubscriptionFactory, UserFactory

pytestmark = pytest.mark.django_db


def member(**fields) -> Client:
    client = Client()
    client.force_login(UserFactory(**fields))
    return client


def form_value(body: str, field: str) -> str:
    return body.split(f'id="id_{field}"', 1)[1].split('value="', 1)[1].split('"', 1)[0]


def test_members_without_a_subscription_share_the_checkout_page_each_with_their_own_name_email_and_token(
    django_assert_max_num_queries,
):
    plan = PlanFactory(name="Trimestral")
    first = member(name="Ana Souza", email="ana@example.com")
    first.get(f"/checkout/{plan.pk}/")  # fills the members' copy
    second = member(name='Bia "B" <O\'Neil>', email="bia@example.com")

    # The session, the user and whether they have a subscription; nothing of the page itself.
    with django_assert_max_num_queries(3):
        body = second.get(f"/checkout/{plan.pk}/").content.decode()

    assert "Trimestral" in body and "Ana Souza" not in body and "ana@example.com" not in body
    assert form_value(body, "name") == "Bia &quot;B&quot; &lt;O&#x27;Neil&gt;"  # escaped as the template escapes
    assert form_value(body, "email") == "bia@example.com"
    assert "own-value-of-the-visitor" not in body and "csrf-token-of-the-visitor" not in body
    token = body.split('name="csrfmiddlewaretoken" value="', 1)[1].split('"', 1)[0]
    assert token and second.cookies["csrftoken"].value


def test_a_guest_gets_an_empty_form_from_the_guests_copy_not_a_members(client):
    plan = PlanFactory()
    member(name="Ana Souza", email="ana@example.com").get(f"/checkout/{plan.pk}/")
    client.get(f"/checkout/{plan.pk}/")  # fills the guests' copy

    body = client.get(f"/checkout/{plan.pk}/").content.decode()

    assert form_value(body, "name") == "" and form_value(body, "email") == ""
    assert "Ana Souza" not in body


def test_a_member_with_a_subscription_the_page_names_gets_their_own_plans_page(client):
    plan = PlanFactory(name="Mensal")
    buyer = UserFactory()
    client.force_login(buyer)
    client.get("/plans/")  # cached while they had none
    SubscriptionFactory(user=buyer, plan=plan, status=Subscription.Status.EXPIRED)

    response = client.get("/plans/")

    assert response.context["subscription"].user == buyer  # rendered for them, not the shared copy
    assert 'data-testid="current-subscription"' in response.content.decode()


def test_a_price_change_in_the_admin_is_seen_on_the_shared_pages_at_once(client, django_capture_on_commit_callbacks):
    plan = PlanFactory(name="Mensal", price_cents=2990)
    assert "29,90" in client.get("/plans/").content.decode()
    assert "29,90" in client.get(f"/checkout/{plan.pk}/").content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        plan.price_cents = 3490
        plan.save()

    assert "34,90" in client.get("/plans/").content.decode()
    assert "34,90" in client.get(f"/checkout/{plan.pk}/").content.decode()


def test_a_checkout_link_with_a_coupon_is_rendered_with_it_not_from_the_cache(client):
    plan = PlanFactory()
    client.get(f"/checkout/{plan.pk}/")

    body = client.get(f"/checkout/{plan.pk}/?cupom=LANCA10").content.decode()

    assert form_value(body, "coupon") == "LANCA10"


def test_the_cached_checkout_page_still_allows_the_card_tokenizers_origin(client, card_junglepay):
    plan = PlanFactory(accepts_card=True, max_installments=3)
    origin = card_junglepay.url.rsplit("/v1", 1)[0]
    client.get(f"/checkout/{plan.pk}/")

    again = client.get(f"/checkout/{plan.pk}/")

    assert f'<script src="{card_junglepay.url}/js"' in again.content.decode()
    assert origin in again["Content-Security-Policy"]
