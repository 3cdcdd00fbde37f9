"""No user can read or act on another user's checkout or subscription."""

import pytest

from billing.models import Checkout
from tests.factories import CheckoutFactory, GatewayFactory, SubscriptionFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice_checkout():
    alice = UserFactory(email="alice@example.com")
    subscription = SubscriptionFactory(user=alice)
    checkout = CheckoutFactory(user=alice, plan=subscription.plan, subscription=subscription, status=Checkout.Status.PAID)
    return alice, checkout


def test_another_user_gets_a_404_for_someone_elses_checkout(api_client, alice_checkout):
    _, checkout = alice_checkout
    api_client.force_login(UserFactory(email="mallory@example.com"))

    response = api_client.get(f"/api/checkout/{checkout.public_id}")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_another_user_cannot_charge_or_simulate_someone_elses_checkout(api_client, alice_checkout, settings):
    settings.SANDBOX_GATEWAY_ALLOWED = True
    GatewayFactory(kind="sandbox", is_active=True)
    _, checkout = alice_checkout
    api_client.force_login(UserFactory(email="mallory@example.com"))

    pix = api_client.post("/api/checkout/pix", {"checkout_id": str(checkout.public_id)}, format="json")
    simulate = api_client.post(f"/api/checkout/{checkout.public_id}/simulate", {"outcome": "refunded"}, format="json")

    assert pix.status_code == 404
    assert simulate.status_code == 404
    checkout.refresh_from_db()
    assert checkout.status == Checkout.Status.PAID


def test_the_owner_and_the_holder_of_the_id_can_read_it(api_client, alice_checkout):
    alice, checkout = alice_checkout

    assert api_client.get(f"/api/checkout/{checkout.public_id}").status_code == 200  # anonymous holder of the uuid
    api_client.force_login(alice)
    assert api_client.get(f"/api/checkout/{checkout.public_id}").status_code == 200


def test_checkout_ids_are_unguessable_uuids(api_client, alice_checkout):
    _, checkout = alice_checkout

    assert api_client.get(f"/api/checkout/{checkout.pk}").status_code == 404
    assert len(str(checkout.public_id)) == 36 and checkout.public_id.version == 4


def test_my_subscription_is_only_ever_my_own(api_client, alice_checkout):
    api_client.force_login(UserFactory(email="mallory@example.com"))

    response = api_client.get("/api/me/subscription")

    assert response.status_code == 200
    assert response.json() is None


def test_the_account_page_lists_only_my_own_payments(client, alice_checkout):
    _, checkout = alice_checkout
    client.force_login(UserFactory(email="mallory@example.com"))

    page = client.get("/account/").content.decode()

    assert str(checkout.public_id) not in page
    assert checkout.customer_email not in page
