"""
Card journeys in Chromium, against the fake JunglePay (a real HTTP server on
another origin, serving the test tokenizer at JUNGLEPAY_JS_URL): a purchase in
3 installments, a refusal then another card, a refusal then PIX, a card that
is processing until its postback. The page learns of the payment by itself (no
reload), the CSP reports no violation, and the card number is found nowhere on
our side: not in the requests we sent, the logs, nor a pg_dump of the database.
"""

import os
import shutil
import subprocess

import pytest
import requests
from django.db import connection

from billing.models import CardAttempt, Checkout, PaymentGateway
from tests.factories import PlanFactory
from tests.fakes.junglepay import FakeJunglePay

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

APPROVED = "4242424242424242"
REFUSED = "4000000000000002"
PROCESSING = "4000000000000119"


@pytest.fixture
def card_site(settings, live_server, monkeypatch):
    with FakeJunglePay() as fake:
        settings.SITE_URL = live_server.url
        settings.JUNGLEPAY_API_URL = fake.url
        settings.JUNGLEPAY_JS_URL = fake.url + "/js"
        PaymentGateway.objects.filter(is_active=True).update(is_active=False)
        PaymentGateway.objects.update_or_create(
            kind="junglepay", defaults={"secret_key": "sk_test_browser", "public_key": "pk_test_browser", "is_active": True}
        )
        plan = PlanFactory(name="Anual", price_cents=23990, duration_days=365, accepts_card=True, max_installments=3)
        yield fake, plan


def _identify(browser, plan, *, email, method="card"):
    browser.get(f"/checkout/{plan.pk}/")
    browser.wait_for("#identify-form")
    browser.find("#id_name").send_keys("Ana Compradora")
    browser.find("#id_email").send_keys(email)
    browser.driver.execute_script("document.getElementById('id_birth_date').value = '1990-05-17'")
    browser.find("#id_cpf").send_keys("52998224725")
    browser.find("#id_phone").send_keys("11987654321")
    # PIX comes first, and is the default
    methods = browser.find_all("#payment-methods input[name=payment_method]")
    assert [m.get_attribute("value") for m in methods] == ["pix", "card"]
    assert methods[0].is_selected()
    if method == "card":
        methods[1].click()
    browser.find("#submit-identify").click()


def _type_card(browser, number, *, installments=None):
    browser.wait_for("#card-form")
    field = browser.find("#card-number")
    field.clear()
    field.send_keys(number)
    holder = browser.find("#card-holder")
    holder.clear()
    holder.send_keys("ANA COMPRADORA")
    expiry = browser.find("#card-expiry")
    expiry.clear()
    expiry.send_keys("1230")
    cvv = browser.find("#card-cvv")
    cvv.clear()
    cvv.send_keys("123")
    if installments:
        browser.find(f"#card-installments option[value='{installments}']").click()
    browser.find("#card-submit").click()


def _csp_violations(browser):
    return [e["message"] for e in browser.driver.get_log("browser") if "Content Security Policy" in e["message"]]


def _deliver_postback(live_server, fake, transaction_id):
    token = PaymentGateway.objects.get(kind="junglepay").postback_token
    response = requests.post(
        f"{live_server.url}/api/webhook/junglepay?token={token}", data=fake.postback_body(transaction_id),
        headers={"Content-Type": "application/json"}, timeout=10,
    )
    assert response.status_code == 200, response.text


def _pg_dump() -> str:
    if connection.vendor != "postgresql" or not shutil.which("pg_dump"):
        pytest.skip("the database dump needs PostgreSQL and pg_dump")
    params = connection.get_connection_params()
    env = {**os.environ, "PGPASSWORD": str(params.get("password") or "")}
    command = ["pg_dump", "--data-only", "-h", params.get("host") or "127.0.0.1", "-p", str(params.get("port") or 5432)]
    command += ["-U", params.get("user") or "postgres", params["dbname"] if "dbname" in params else params["database"]]
    return subprocess.run(command, env=env, capture_output=True, text=True, check=True, timeout=120).stdout


def test_a_card_purchase_in_three_installments_pays_without_a_reload_and_the_number_is_stored_nowhere(
    browser, card_site, caplog
):
    fake, plan = card_site
    caplog.set_level("DEBUG")
    _identify(browser, plan, email="ana.cartao@example.com")
    # every request the page makes to our server, as the browser sends it
    browser.driver.execute_script(
        "window.__sent = []; var f = window.fetch; window.fetch = function (url, options) {"
        " window.__sent.push(String(url) + ' ' + ((options && options.body) || '')); return f.apply(this, arguments); };"
    )

    # the card form: brand as typed, installments each with its amount
    browser.wait_for("#card-number").send_keys("4242")
    browser.wait_until(lambda: browser.find("#card-brand").text == "Visa", message="brand not shown as typed")
    options = [o.text for o in browser.find_all("#card-installments option")]
    assert options[2] == "3× de R$ 79,97 sem juros", options
    browser.screenshot("card-form")
    _type_card(browser, APPROVED, installments=3)

    browser.wait_for("#step-done", timeout=25)
    browser.screenshot("card-paid")
    checkout = Checkout.objects.get(customer_email="ana.cartao@example.com")
    assert (checkout.status, checkout.payment_method, checkout.installments, checkout.card_last_digits) == ("paid", "card", 3, "4242")
    assert checkout.subscription.card_id  # saved for automatic renewals
    [body] = fake.bodies
    assert body["installments"] == 3 and set(body["card"]) == {"hash"}
    assert _csp_violations(browser) == []

    # the number reached neither our server, nor the gateway request we sent, nor our logs, nor our database
    spaced = "4242 4242 4242 4242"
    sent = browser.driver.execute_script("return window.__sent")
    assert any("/api/checkout/card" in request and "card_hash" in request for request in sent), sent
    assert not any(APPROVED in request or spaced in request for request in sent)
    assert APPROVED not in repr(fake.bodies)
    # (the test's own browser driver logs what it typed: only the site's records are ours)
    ours = "\n".join(
        f"{r.getMessage()} {r.__dict__}" for r in caplog.records if not r.name.startswith(("selenium", "urllib3"))
    )
    assert ours and APPROVED not in ours and spaced not in ours
    dump = _pg_dump()
    assert checkout.subscription.card_id in dump  # the dump is of the database the purchase wrote
    assert APPROVED not in dump and spaced not in dump


def test_a_refused_card_shows_the_banks_reason_and_another_card_pays(browser, card_site):
    fake, plan = card_site
    _identify(browser, plan, email="ana.recusa@example.com")

    _type_card(browser, REFUSED)
    error = browser.wait_for("#card-error")
    browser.wait_until(lambda: "Saldo insuficiente" in error.text, message="the refusal reason is not shown")
    browser.screenshot("card-refused")
    _type_card(browser, APPROVED)

    browser.wait_for("#step-done", timeout=25)
    checkout = Checkout.objects.get(customer_email="ana.recusa@example.com")
    assert checkout.status == "paid"
    assert list(CardAttempt.objects.filter(checkout=checkout).order_by("pk").values_list("status", flat=True)) == ["refused", "paid"]
    assert _csp_violations(browser) == []


def test_a_refused_card_then_pix_in_place_and_the_page_turns_paid_by_itself(browser, card_site, live_server):
    fake, plan = card_site
    _identify(browser, plan, email="ana.pix@example.com")
    _type_card(browser, REFUSED)
    browser.wait_for("#card-error")

    browser.find("#card-to-pix").click()
    browser.wait_until(lambda: browser.find("#pix-code").get_attribute("value"), message="no PIX code shown")
    checkout = Checkout.objects.get(customer_email="ana.pix@example.com")
    checkout.refresh_from_db()
    assert checkout.payment_method == "pix"
    fake.set_status(checkout.gateway_transaction_id, "paid")
    _deliver_postback(live_server, fake, checkout.gateway_transaction_id)

    browser.wait_for("#step-done", timeout=20)
    assert Checkout.objects.get(pk=checkout.pk).status == "paid"
    assert _csp_violations(browser) == []


def test_a_processing_card_waits_on_the_page_until_its_postback(browser, card_site, live_server):
    fake, plan = card_site
    _identify(browser, plan, email="ana.processa@example.com")
    _type_card(browser, PROCESSING, installments=2)

    browser.wait_for("#waiting")
    attempt = CardAttempt.objects.get(checkout__customer_email="ana.processa@example.com")
    assert attempt.status == "processing"
    fake.set_status(attempt.transaction_id, "paid")
    _deliver_postback(live_server, fake, attempt.transaction_id)

    browser.wait_for("#step-done", timeout=20)
    assert _csp_violations(browser) == []

