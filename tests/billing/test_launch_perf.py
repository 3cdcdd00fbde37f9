"""
The wait made cheap: the polled checkout status comes from the cache,
written through by every status change after its commit, never stale once the
payment committed, and still only what the caller may see.
"""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from billing import services
from billing.checkout_status import cache_key, cached_status, remember_status
from billing.models import Checkout
from tests.billing.paymentkit import sandbox
from tests.factories import PlanFactory, UserFactory

pytestmark = pytest.mark.django_db

VALID = {
    "payment_method": "pix",
    "order_bump_ids": [],
    "name": "Ana Souza",
    "email": "ana@example.com",
    "cpf": "529.982.247-25",
    "phone": "(11) 98765-4321",
    "birth_date": "1990-05-20",
}


@pytest.fixture
def gateway(settings):
    settings.DEBUG = False
    settings.SANDBOX_GATEWAY_ALLOWED = True
    return sandbox()


def charged(api_client, **overrides):
    checkout_id = api_client.post(
        "/api/checkout/process",
        {**VALID, "plan_id": PlanFactory().pk, **overrides},
        format="json",
    ).json()["checkout_id"]
    assert (
        api_client.post(
            "/api/checkout/pix", {"checkout_id": checkout_id}, format="json"
        ).status_code
        == 200
    )
    return checkout_id


def pay(api_client, checkout_id, capture):
    with capture(execute=True):
        response = api_client.post(
            f"/api/checkout/{checkout_id}/simulate", {"outcome": "paid"}, format="json"
        )
    assert response.status_code == 200, response.content


def test_polling_a_pending_checkout_costs_no_query_once_cached(
    api_client, gateway, django_assert_num_queries
):
    checkout_id = charged(api_client)
    first = api_client.get(
        f"/api/checkout/{checkout_id}"
    ).json()  # a miss: read, then cached

    with django_assert_num_queries(0):
        again = [
            api_client.get(f"/api/checkout/{checkout_id}").json() for _ in range(5)
        ]

    assert all(body == first for body in again)
    assert first["status"] == "pending" and first["subscription"] is None


def test_the_cached_answer_is_the_databases_answer_byte_for_byte(
    api_client, gateway, django_capture_on_commit_callbacks
):
    checkout_id = charged(api_client)
    pay(api_client, checkout_id, django_capture_on_commit_callbacks)
    from_cache = api_client.get(f"/api/checkout/{checkout_id}").content

    cache.delete(cache_key(checkout_id))
    from_database = api_client.get(f"/api/checkout/{checkout_id}").content

    assert from_cache == from_database


def test_a_paid_checkouts_status_is_never_served_stale_after_the_commit(
    api_client, gateway, django_capture_on_commit_callbacks
):
    checkout_id = charged(api_client)
    assert (
        api_client.get(f"/api/checkout/{checkout_id}").json()["status"] == "pending"
    )  # cached pending

    pay(api_client, checkout_id, django_capture_on_commit_callbacks)

    body = api_client.get(f"/api/checkout/{checkout_id}").json()
    assert body["status"] == "paid" and body["paid_at"]


def test_a_poll_that_read_pending_before_the_payment_committed_cannot_overwrite_paid(
    api_client, gateway, django_capture_on_commit_callbacks
):
    checkout_id = charged(api_client)
    stale = Checkout.objects.get(
        public_id=checkout_id
    )  # a poller read `pending` from the database...
    pay(
        api_client, checkout_id, django_capture_on_commit_callbacks
    )  # ...then the payment committed...

    remember_status(stale)  # ...and only then did that poller fill the cache

    assert cached_status(checkout_id)["status"] == "paid"
    assert api_client.get(f"/api/checkout/{checkout_id}").json()["status"] == "paid"


def test_a_refund_and_a_failure_rewrite_the_cached_status(
    api_client, gateway, django_capture_on_commit_callbacks
):
    paid_id, failing_id = (
        charged(api_client),
        charged(api_client, cpf="111.444.777-35", email="bia@example.com"),
    )
    pay(api_client, paid_id, django_capture_on_commit_callbacks)
    api_client.get(f"/api/checkout/{failing_id}")  # cached pending

    with django_capture_on_commit_callbacks(execute=True):
        services.refund_checkout(checkout=Checkout.objects.get(public_id=paid_id))
        services.fail_checkout(
            checkout=Checkout.objects.get(public_id=failing_id),
            status=Checkout.Status.EXPIRED,
        )

    assert api_client.get(f"/api/checkout/{paid_id}").json()["status"] == "refunded"
    assert api_client.get(f"/api/checkout/{failing_id}").json()["status"] == "expired"


def test_from_the_cache_an_anonymous_holder_of_an_accounts_paid_checkout_sees_its_status_only(
    api_client, gateway, django_capture_on_commit_callbacks
):
    owner, stranger = UserFactory(), UserFactory()
    api_client.force_login(owner)
    checkout_id = charged(api_client, email=owner.email)
    pay(api_client, checkout_id, django_capture_on_commit_callbacks)
    assert cached_status(checkout_id)["status"] == "paid"

    owners = api_client.get(f"/api/checkout/{checkout_id}").json()
    api_client.logout()
    anonymous = api_client.get(f"/api/checkout/{checkout_id}").json()
    api_client.force_login(stranger)
    strangers = api_client.get(f"/api/checkout/{checkout_id}")

    assert (
        owners["subscription"] is not None
        and owners["subscription"]["status"] == "active"
    )
    assert anonymous == {
        key: owners[key] for key in ("checkout_id", "status", "total_amount", "paid_at")
    } | {"subscription": None}
    assert strangers.status_code == 404


def test_the_sweep_expiring_a_polled_checkout_rewrites_its_cached_status(
    api_client, gateway, django_capture_on_commit_callbacks
):
    checkout_id = charged(api_client)
    assert api_client.get(f"/api/checkout/{checkout_id}").json()["status"] == "pending"  # cached
    expired_at = timezone.now() - timedelta(minutes=1)
    Checkout.objects.filter(public_id=checkout_id).update(pix_expires_at=expired_at)

    with django_capture_on_commit_callbacks(execute=True):
        result = services.sweep_subscriptions()

    assert result.checkouts_expired == 1
    assert api_client.get(f"/api/checkout/{checkout_id}").json()["status"] == "expired"
