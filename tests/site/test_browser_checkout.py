"""
Journey 1: a visitor browses a creator, opens a locked post, goes to the
plans, checks out with the sandbox gateway (a wrong CPF first), sees the PIX
QR code, simulates the payment, and the page turns to success by itself.
The new account's set-password e-mail leads back in, and the post is unlocked.
"""

import re

import pytest
from django.core import mail
from selenium.webdriver.common.by import By

from billing.access import user_has_access
from billing.models import Checkout, Subscription
from tests.factories import GatewayFactory, OrderBumpFactory, PlanFactory
from tests.site.art import svg_data_url

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

VALID_CPF = "52998224725"
NEW_PASSWORD = "uma-senha-bem-forte-42"


def test_visitor_subscribes_with_pix_and_the_post_unlocks(browser, settings, live_server, live_media, make_creator, make_post):
    # given: a creator with a post, a plan, an order bump, and the sandbox gateway
    settings.SANDBOX_GATEWAY_ALLOWED = True
    settings.SITE_URL = live_server.url
    creator = make_creator(
        name="Luna Ribeiro",
        slug="luna-ribeiro",
        is_featured=True,
        source_thumbnail_url=svg_data_url(340, label="Luna"),
        source_banner_url=svg_data_url(350, width=1600, height=500),
    )
    post = make_post(creator, title="Ensaio no estúdio", images=2)
    live_media()
    plan = PlanFactory(name="Mensal", price_cents=2990)
    OrderBumpFactory(name="Pack de boas-vindas", price_cents=990)
    GatewayFactory(kind="sandbox", is_active=True)

    # when: the visitor browses to the post
    browser.get("/")
    browser.find("[data-testid=creator-card]").click()
    # the 18+ gate comes first (contract §4), once per session
    browser.wait_for("[data-testid=age-gate]")
    browser.screenshot("0-age-gate")
    browser.find("#age-gate-confirm").click()
    browser.wait_for("[data-testid=post-count]")
    browser.find(f"a[href='/posts/{post.pk}/']").click()
    browser.wait_for("[data-testid=locked]")
    browser.screenshot("1-locked-post")

    # then to the plans and the checkout of the plan
    browser.find("[data-testid=subscribe-cta]").click()
    browser.wait_for("[data-testid=plan-card]")
    browser.find(f"a[href='/checkout/{plan.pk}/']").click()
    browser.wait_for("#identify-form")

    # step 1: the order bump changes the displayed total
    assert "29,90" in browser.find("#total").text
    browser.find("label.bump").click()
    browser.wait_until(lambda: "39,80" in browser.find("#total").text, message="total did not include the bump")

    # a wrong CPF is refused by the API and shown beside the field
    browser.find("#id_name").send_keys("Maria Visitante")
    browser.find("#id_email").send_keys("maria@example.com")
    # a date input's typing order follows the browser's locale: set its value (ISO) directly
    browser.driver.execute_script("document.getElementById('id_birth_date').value = '1990-05-17'")
    cpf = browser.find("#id_cpf")
    cpf.send_keys("11111111111")
    assert cpf.get_attribute("value") == "111.111.111-11"  # the mask
    phone = browser.find("#id_phone")
    phone.send_keys("11987654321")
    assert phone.get_attribute("value") == "(11) 98765-4321"
    browser.find("#submit-identify").click()
    error = browser.wait_for("#error-cpf")
    assert error.text
    assert cpf.get_attribute("aria-invalid") == "true"
    assert not Checkout.objects.exists()
    browser.screenshot("2-cpf-error")

    # step 2: a good CPF gets the PIX QR code and its copy-and-paste code
    cpf.clear()
    cpf.send_keys(VALID_CPF)
    browser.find("#submit-identify").click()
    browser.wait_for("#pix-qr svg", timeout=15)
    assert browser.find("#pix-code").get_attribute("value")
    assert re.search(r"\d{2}:\d{2}", browser.find("#pix-countdown").text)
    assert "39,80" in browser.find("#pay-total").text
    checkout = Checkout.objects.get()
    assert checkout.total_cents == 3980  # computed by the server
    assert f"checkout={checkout.public_id}" in browser.driver.current_url
    browser.find("#copy-code").click()
    browser.wait_until(lambda: browser.find("#copy-code").text == "Copiado!", message="copy button did not confirm")
    browser.screenshot("3-pix")

    # the sandbox's simulate button pays; the page turns to success by itself
    browser.find("#simulate-paid").click()
    browser.wait_for("#step-done", timeout=15)
    browser.screenshot("4-success")
    problems = [e["message"] for e in browser.js_errors() if "status of 400" not in e["message"]]
    assert problems == []  # no script error, no Content-Security-Policy violation (the 400 was the CPF)
    checkout.refresh_from_db()
    assert checkout.status == Checkout.Status.PAID
    subscription = Subscription.objects.get(user__email="maria@example.com")
    assert subscription.status == Subscription.Status.ACTIVE

    # the set-password e-mail leads back in, and the post is unlocked
    # (the receipt e-mail went out too; the set-password one carries the link)
    link = next(found.group(0) for message in mail.outbox if (found := re.search(r"https?://\S+/reset/\S+/", message.body)))
    browser.driver.get(link)
    browser.wait_for("input[type=password]")
    for field in browser.find_all("input[type=password]"):
        field.send_keys(NEW_PASSWORD)
    browser.find("main form button[type=submit]").click()
    browser.wait_until(lambda: "/reset/" in browser.driver.current_url and "done" in browser.driver.current_url)
    from tests.site.conftest import log_in

    log_in(browser, "maria@example.com", NEW_PASSWORD)
    browser.get(f"/posts/{post.pk}/")
    browser.wait_for("main")
    assert not browser.find_all("[data-testid=locked]")
    assert len(browser.driver.find_elements(By.CSS_SELECTOR, "[data-testid=media] .slide")) == 2
    browser.wait_until(
        lambda: browser.driver.execute_script("return document.querySelector('[data-testid=media] img').naturalWidth") > 0,
        message="the unlocked image did not load",
    )
    browser.screenshot("5-unlocked")


def test_a_refused_payment_says_so_and_offers_to_start_again(browser, settings, user):
    # given: a logged-in user (name and e-mail prefilled) on a plan's checkout, sandbox active
    settings.SANDBOX_GATEWAY_ALLOWED = True
    GatewayFactory(kind="sandbox", is_active=True)
    plan = PlanFactory(name="Mensal")
    from tests.site.conftest import log_in

    log_in(browser, user.email)
    browser.get(f"/checkout/{plan.pk}/")
    assert browser.find("#id_email").get_attribute("value") == user.email

    # when: the PIX is issued and the sandbox refuses it
    browser.find("#id_cpf").send_keys(VALID_CPF)
    browser.find("#id_phone").send_keys("21912345678")
    browser.find("#submit-identify").click()
    browser.wait_for("#pix-qr svg", timeout=15)
    browser.find("#sandbox [data-outcome=refused]").click()

    # then: the page says so by itself, stops waiting, and links to a fresh start
    problem = browser.wait_for("#pay-problem", timeout=15)
    assert problem.text
    assert not browser.find("#waiting").is_displayed()
    assert not browser.find("#pix-qr").is_displayed()  # nothing left to pay
    assert browser.find("#pay-problem a").get_attribute("href").endswith(f"/checkout/{plan.pk}/")
    assert Checkout.objects.get().status == Checkout.Status.FAILED
    assert not Subscription.objects.filter(user=user).live().exists()
    assert not user_has_access(user)
    browser.screenshot("refused")
