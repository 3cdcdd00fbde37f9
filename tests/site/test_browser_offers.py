"""
The offers' journeys in a real browser: a coupon link gives a discounted PIX
that the sandbox pays; a plan's free trial gives access at once, and its
first charge is e-mailed when the (moved) clock reaches it.
"""

import re
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.core import mail

from billing.models import Checkout, Coupon, Subscription
from billing.services import sweep_subscriptions
from tests.factories import GatewayFactory, PlanFactory
from tests.site.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

VALID_CPF = "52998224725"


def _pass_age_gate(browser):
    """The 18+ gate (contract §4), when the page shows it."""
    buttons = [b for b in browser.find_all("#age-gate-confirm") if b.is_displayed()]
    if buttons:
        buttons[0].click()


def _fill_identity(browser, *, name=None, email=None):
    if name:
        browser.find("#id_name").send_keys(name)
    if email:
        browser.find("#id_email").send_keys(email)
    # a date input's typing order follows the browser's locale: set its value (ISO) directly
    browser.driver.execute_script("document.getElementById('id_birth_date').value = '1990-05-17'")
    browser.find("#id_cpf").send_keys(VALID_CPF)
    browser.find("#id_phone").send_keys("11987654321")


def test_a_coupon_link_gives_a_discounted_pix_that_turns_paid(browser, settings, live_server):
    # given: a plan, a 20% coupon for it, and the sandbox gateway
    settings.SANDBOX_GATEWAY_ALLOWED = True
    settings.SITE_URL = live_server.url
    GatewayFactory(kind="sandbox", is_active=True)
    plan = PlanFactory(name="Mensal", price_cents=2990)
    coupon = Coupon.objects.create(code="BEMVINDA20", kind=Coupon.Kind.PERCENT, value=20)
    coupon.plans.add(plan)

    # when: the buyer follows the campaign's link (any case)
    browser.get(f"/checkout/{plan.pk}/?cupom=bemvinda20")
    _pass_age_gate(browser)
    browser.wait_for("#identify-form")

    # then: the coupon is pre-filled, checked by the server, and the total is discounted
    assert browser.find("#id_coupon").get_attribute("value").lower() == "bemvinda20"
    browser.wait_until(lambda: "23,92" in browser.find("#total").text, message="the total was not discounted")
    assert browser.find("#summary-discount").is_displayed()
    assert "5,98" in browser.find("#summary-discount-amount").text
    assert browser.find("#coupon-status").text
    browser.screenshot("1-coupon-applied")

    # the PIX is issued for the discounted amount, computed by the server
    _fill_identity(browser, name="Maria Cupom", email="maria.cupom@example.com")
    browser.find("#submit-identify").click()
    browser.wait_for("#pix-qr svg", timeout=15)
    assert "23,92" in browser.find("#pay-total").text
    checkout = Checkout.objects.get()
    assert checkout.coupon_id == coupon.pk
    assert checkout.discount_cents == 598 and checkout.total_cents == 2392
    browser.screenshot("2-discounted-pix")

    # the sandbox pays it; the page turns to success by itself and the use is counted
    browser.find("#simulate-paid").click()
    browser.wait_for("#step-done", timeout=15)
    browser.screenshot("3-paid")
    checkout.refresh_from_db()
    assert checkout.status == Checkout.Status.PAID and checkout.total_cents == 2392
    coupon.refresh_from_db()
    assert coupon.uses == 1
    assert Subscription.objects.get(user__email="maria.cupom@example.com").status == Subscription.Status.ACTIVE
    assert [e["message"] for e in browser.js_errors()] == []


def test_a_trial_gives_access_at_once_and_its_first_charge_is_emailed_later(
    browser, settings, live_server, live_media, make_creator, make_post, user
):
    # given: a plan with a 7-day trial, a locked post, a logged-in first-time buyer
    settings.SANDBOX_GATEWAY_ALLOWED = True
    settings.SITE_URL = live_server.url
    GatewayFactory(kind="sandbox", is_active=True)
    plan = PlanFactory(name="Mensal", price_cents=2990, duration_days=30, trial_days=7)
    post = make_post(make_creator(name="Luna Ribeiro", slug="luna-ribeiro"), title="Ensaio", images=1)
    live_media()
    log_in(browser, user.email)

    # when: the buyer starts the trial from the checkout page
    browser.get(f"/checkout/{plan.pk}/")
    _pass_age_gate(browser)
    browser.wait_for("#identify-form")
    assert browser.find("[data-testid=trial-offer]").text
    browser.wait_until(lambda: "0,00" in browser.find("#total").text, message="a trial costs nothing today")
    _fill_identity(browser)
    browser.find("#submit-identify").click()

    # then: no PIX, access at once
    browser.wait_for("#step-done", timeout=15)
    assert not browser.find("#pix-qr").is_displayed()
    browser.screenshot("1-trial-started")
    checkout = Checkout.objects.get()
    assert checkout.total_cents == 0 and checkout.is_trial and not checkout.gateway_transaction_id and not checkout.pix_code
    subscription = Subscription.objects.get(user=user)
    assert subscription.status == Subscription.Status.TRIALING

    browser.get("/account/")
    assert browser.wait_for("[data-testid=trialing]").text
    browser.get(f"/posts/{post.pk}/")
    _pass_age_gate(browser)
    browser.wait_for("[data-testid=media]")
    assert not browser.find_all("[data-testid=locked]")
    browser.screenshot("2-access")

    # and: with the clock moved to the first charge's notice, it is issued and e-mailed with its link
    mail.outbox.clear()
    notice_at = subscription.end_date - timedelta(days=django_settings.RENEWAL_NOTICE_DAYS) + timedelta(hours=1)
    assert sweep_subscriptions(now=notice_at).renewals_issued == 1
    charge = Checkout.objects.get(purpose=Checkout.Purpose.RENEWAL)
    assert charge.total_cents == 2990 and charge.subscription_id == subscription.pk
    assert len(mail.outbox) == 1 and mail.outbox[0].to == [user.email]
    link = re.search(r"https?://\S+/checkout/pay/[0-9a-f-]+/", mail.outbox[0].body).group(0)
    assert str(charge.public_id) in link

    # the link opens the first charge's PIX page
    browser.driver.get(link)
    browser.wait_for("#pix-qr svg", timeout=15)
    assert "29,90" in browser.find("#total").text
    browser.screenshot("3-first-charge")
