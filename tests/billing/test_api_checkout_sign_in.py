"""
Paid → watching (contract §3): the guest who pays in the browser that created
the checkout is signed in there to the account the payment created; never
another client holding the id, never an account that existed before the
payment; the set-password e-mail still goes out.
"""

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from rest_framework.test import APIClient

from billing import services
from billing.models import Checkout
from tests.billing.paymentkit import sandbox
from tests.factories import PlanFactory, UserFactory

pytestmark = pytest.mark.django_db

BUYER = {"payment_method": "pix", "order_bump_ids": [], "name": "Ana Souza", "email": "ana@example.com", "cpf": "529.982.247-25", "phone": "(11) 98765-4321", "birth_date": "1990-05-17"}


@pytest.fixture(autouse=True)
def gateway(settings):
    settings.SANDBOX_GATEWAY_ALLOWED = True
    return sandbox()


def start_checkout(client, **overrides) -> str:
    response = client.post("/api/checkout/process", {**BUYER, "plan_id": PlanFactory().pk, **overrides}, format="json")
    assert response.status_code == 201, response.content
    return response.json()["checkout_id"]


def pay(checkout_id, *, paid_at=None):
    services.activate_checkout(checkout=Checkout.objects.get(public_id=checkout_id), paid_at=paid_at or timezone.now())


def sign_in(client, checkout_id):
    return client.post(f"/api/checkout/{checkout_id}/sign-in", format="json")


def test_the_guest_who_paid_in_this_browser_is_signed_in_to_the_new_account(django_capture_on_commit_callbacks):
    # given: a guest's browser created a checkout, and its payment arrived
    browser = APIClient()
    checkout_id = start_checkout(browser)
    with django_capture_on_commit_callbacks(execute=True):
        pay(checkout_id)

    # when: the page, having seen the payment, asks
    response = sign_in(browser, checkout_id)

    # then: signed in, with access, and the set-password e-mail went out all the same
    assert response.status_code == 200, response.content
    assert response.json()["email"] == "ana@example.com" and response.json()["has_access"] is True
    assert browser.get("/api/me/subscription").json()["status"] == "active"
    [link] = [re.search(r"https?://\S+/reset/\S+/", message.body).group(0) for message in mail.outbox if "/reset/" in message.body]
    # ...and its link still works after this sign-in (reset tokens hash last_login)
    page = browser.get(link.split("127.0.0.1:8000")[-1], follow=True)
    assert b'type="password"' in page.content


def test_another_client_that_holds_the_id_is_never_signed_in():
    checkout_id = start_checkout(APIClient())
    pay(checkout_id)
    other = APIClient()

    response = sign_in(other, checkout_id)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "sign_in_refused"
    assert other.get("/api/me/subscription").status_code in (401, 403)


def test_an_account_that_existed_before_the_payment_is_never_signed_in():
    # An account created by an earlier payment (no password yet): the new payment goes to it, but it existed.
    browser = APIClient()
    pay(start_checkout(APIClient()))
    checkout_id = start_checkout(browser)
    pay(checkout_id)

    assert Checkout.objects.get(public_id=checkout_id).user.email == "ana@example.com"
    assert sign_in(browser, checkout_id).status_code == 403


def test_a_confirmed_account_that_existed_before_is_never_signed_in():
    UserFactory(email="ana@example.com", email_confirmed_at=timezone.now())
    browser = APIClient()
    checkout_id = start_checkout(browser)
    pay(checkout_id)

    assert sign_in(browser, checkout_id).status_code == 403


def test_nothing_is_signed_in_before_the_payment():
    browser = APIClient()
    checkout_id = start_checkout(browser)

    assert sign_in(browser, checkout_id).status_code == 403


def test_the_browser_is_signed_in_once_and_not_again_after_logging_out():
    browser = APIClient()
    checkout_id = start_checkout(browser)
    pay(checkout_id)
    assert sign_in(browser, checkout_id).status_code == 200

    browser.post("/api/auth/logout", format="json")

    assert sign_in(browser, checkout_id).status_code == 403


def test_an_account_whose_password_was_set_is_no_longer_signed_in_this_way():
    browser = APIClient()
    checkout_id = start_checkout(browser)
    pay(checkout_id)
    owner = Checkout.objects.get(public_id=checkout_id).user
    owner.set_password("a-password-of-her-own")
    owner.save()

    assert sign_in(browser, checkout_id).status_code == 403


def test_an_old_payment_no_longer_signs_in():
    browser = APIClient()
    checkout_id = start_checkout(browser)
    pay(checkout_id, paid_at=timezone.now() - timedelta(days=2))

    assert sign_in(browser, checkout_id).status_code == 403


def test_a_signed_in_owner_is_answered_and_a_stranger_refused():
    owner = UserFactory()
    browser = APIClient()
    browser.force_authenticate(owner)
    checkout_id = start_checkout(browser, email=owner.email)
    pay(checkout_id)
    stranger = APIClient()
    stranger.force_authenticate(UserFactory())

    assert sign_in(browser, checkout_id).json()["id"] == owner.pk
    assert sign_in(stranger, checkout_id).status_code == 403
