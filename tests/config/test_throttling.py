"""
Throttles and the login lockout key on config.client_ip (TRUSTED_PROXIES):
forged X-Forwarded-For never escapes a limit, visitors behind one proxy are
told apart, buyers behind one carrier-grade NAT all get their PIX, and an
authenticated webhook is never throttled.
"""

import pytest
import responses
from django.core.cache import cache

from billing.models import Checkout, WebhookEvent
from tests.billing.paymentkit import JP, jp_checkout, junglepay, post_webhook, postback, sandbox, transaction
from tests.factories import PlanFactory, UserFactory

pytestmark = pytest.mark.django_db

PROXY = "10.0.0.1"  # nginx, as gunicorn sees it


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()
    yield
    cache.clear()


def set_rates(settings, **rates):
    # DRF reloads its settings on setting_changed; the fixture restores them afterwards.
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], **rates},
    }


def cpf(seed: int) -> str:
    digits = [int(d) for d in f"{seed:09d}"]
    if len(set(digits)) == 1:
        digits[0] = (digits[0] + 1) % 10
    for length in (9, 10):
        check = sum(d * (length + 1 - i) for i, d in enumerate(digits)) * 10 % 11
        digits.append(0 if check == 10 else check)
    return "".join(map(str, digits))


def buyer(n: int, plan) -> dict:
    return {
        "plan_id": plan.pk,
        "payment_method": "pix",
        "order_bump_ids": [],
        "name": f"Comprador {n}",
        "email": f"comprador{n}@example.com",
        "cpf": cpf(123456 + n * 7919),
        "phone": "(11) 98765-4321",
        "birth_date": "1990-05-17",
    }


@pytest.fixture
def sandbox_gateway(settings):
    settings.DEBUG = False
    settings.SANDBOX_GATEWAY_ALLOWED = True
    return sandbox()


# --- the API's throttles ------------------------------------------------------
def test_a_forged_x_forwarded_for_does_not_escape_the_auth_throttle(api_client, settings):
    # given: no proxy declared, three logins a minute
    settings.TRUSTED_PROXIES = 0
    set_rates(settings, auth="3/min")

    # when: each attempt claims another address
    codes = [
        api_client.post("/api/auth/login", {"email": "x@example.com", "password": "nope"}, format="json", REMOTE_ADDR="192.0.2.5", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}").status_code
        for n in range(4)
    ]

    # then
    assert codes[-1] == 429


def test_behind_one_proxy_two_visitors_are_counted_apart_and_forging_a_hop_does_not_help(api_client, settings):
    settings.TRUSTED_PROXIES = 1
    set_rates(settings, auth="3/min")

    def login(chain):
        return api_client.post("/api/auth/login", {"email": "x@example.com", "password": "nope"}, format="json", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=chain).status_code

    attacker = [login(f"203.0.113.{n}, 198.51.100.1") for n in range(4)]
    other = login("198.51.100.2")

    assert attacker[-1] == 429
    assert other == 400


def test_forty_buyers_behind_one_address_all_get_their_pix(api_client, sandbox_gateway):
    # given: one public address (carrier-grade NAT), default rates
    plan = PlanFactory()

    # when: forty different buyers each buy and ask for the PIX (twice: a reload) and poll
    refused = []
    for n in range(40):
        created = api_client.post("/api/checkout/process", buyer(n, plan), format="json", REMOTE_ADDR="198.51.100.50")
        if created.status_code != 201:
            refused.append(("process", n, created.status_code))
            continue
        checkout_id = created.json()["checkout_id"]
        for _ in range(2):
            pix = api_client.post("/api/checkout/pix", {"checkout_id": checkout_id}, format="json", REMOTE_ADDR="198.51.100.50")
            if pix.status_code != 200:
                refused.append(("pix", n, pix.status_code))
        assert api_client.get(f"/api/checkout/{checkout_id}", REMOTE_ADDR="198.51.100.50").status_code == 200

    # then
    assert refused == []
    assert Checkout.objects.exclude(pix_code="").count() == 40


def test_new_purchases_are_throttled_per_customer_whatever_the_address(api_client, sandbox_gateway, settings):
    set_rates(settings, checkout_customer="3/min")
    plan = PlanFactory()
    same_email = buyer(1, plan)

    codes = [
        api_client.post("/api/checkout/process", {**same_email, "cpf": cpf(1000 + n)}, format="json", REMOTE_ADDR=f"192.0.2.{n}").status_code
        for n in range(4)
    ]
    same_cpf = [
        api_client.post("/api/checkout/process", {**buyer(100 + n, plan), "cpf": cpf(777)}, format="json", REMOTE_ADDR=f"192.0.2.{50 + n}").status_code
        for n in range(4)
    ]

    assert codes == [201, 201, 201, 429]
    assert same_cpf == [201, 201, 201, 429]


def test_new_purchases_have_a_ceiling_per_address(api_client, sandbox_gateway, settings):
    set_rates(settings, checkout_address="3/min")
    plan = PlanFactory()

    codes = [api_client.post("/api/checkout/process", buyer(n, plan), format="json").status_code for n in range(4)]

    assert codes == [201, 201, 201, 429]


def test_a_checkouts_pix_calls_never_count_against_new_purchases(api_client, sandbox_gateway, settings):
    # given: room for two new purchases a minute from this address
    set_rates(settings, checkout_address="2/min")
    plan = PlanFactory()
    checkout_id = api_client.post("/api/checkout/process", buyer(1, plan), format="json").json()["checkout_id"]

    # when: the page asks for its PIX five times
    pix = [api_client.post("/api/checkout/pix", {"checkout_id": checkout_id}, format="json").status_code for _ in range(5)]

    # then: a second buyer can still buy
    assert pix == [200] * 5
    assert api_client.post("/api/checkout/process", buyer(2, plan), format="json").status_code == 201


# --- webhooks -----------------------------------------------------------------
@responses.activate
def test_authenticated_webhooks_are_never_throttled_and_every_body_is_stored(client, settings):
    # given: a JunglePay backlog larger than the webhook rate
    settings.JUNGLEPAY_API_URL = JP
    set_rates(settings, webhook="3/min")
    gateway = junglepay()
    checkout = jp_checkout(gateway, customer_email="ana@example.com")
    responses.get(f"{JP}/transactions/{checkout.gateway_transaction_id}", json=transaction(checkout, status="waiting_payment"))

    # when: ten distinct postbacks arrive from the gateway's address
    codes = [
        post_webhook(client, "junglepay", postback(checkout, postback_id=5000 + n, status="waiting_payment"), token=gateway.postback_token).status_code
        for n in range(10)
    ]

    # then
    assert codes == [200] * 10
    assert WebhookEvent.objects.count() == 10


def test_unauthenticated_webhooks_are_throttled(client, settings):
    set_rates(settings, webhook="3/min")
    junglepay()

    codes = [post_webhook(client, "junglepay", {"id": n}, token="wrong").status_code for n in range(4)]

    assert codes == [401, 401, 401, 429]
    assert not WebhookEvent.objects.exists()


# --- the login lockout (pages) ----------------------------------------------------
def test_behind_nginx_one_visitors_failures_do_not_lock_the_others_out(client, settings):
    # given: the site behind one proxy; an attacker fails more than the limit, on many e-mails
    settings.TRUSTED_PROXIES = 1
    settings.LOGIN_THROTTLE_ATTEMPTS = 3
    user = UserFactory()
    for n in range(5):
        client.post("/accounts/login/", {"username": f"victim{n}@example.com", "password": "wrong"}, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="203.0.113.66")

    # when: someone else logs in through the same proxy
    response = client.post("/accounts/login/", {"username": user.email, "password": "correct-horse-battery"}, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="198.51.100.2")

    # then: they are in; the attacker's address stays locked
    assert response.status_code == 302
    client.logout()
    blocked = client.post("/accounts/login/", {"username": user.email, "password": "correct-horse-battery"}, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="1.1.1.1, 203.0.113.66")
    assert blocked.status_code == 200  # the form again, saying to wait
    assert not blocked.wsgi_request.user.is_authenticated
