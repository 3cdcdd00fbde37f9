"""
Journey 1: a visitor browses a creator, opens a locked post, goes to the
plans, checks out with the sandbox gateway (a wrong CPF first), sees the PIX
QR code, simulates the payment, and the page turns to success by itself.
The new account's set-password e-mail leads back in, and the post is unlocked.
"""

import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.utils import timezone
from selenium.webdriver.common.by import By

from billing.access import user_has_access
from billing.models import Checkout, Coupon, Subscription
from tests.factories import GatewayFactory, OrderBumpFactory, PlanFactory
from tests.site.art import svg_data_url
from tests.site.conftest import log_in

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
    # (the link carries where the buyer was: "See the content" goes back there once paid)
    browser.find(f"a[href='/checkout/{plan.pk}/?next=/posts/{post.pk}/']").click()
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
    # a date and a time in São Paulo, not a ticking clock; the countdown waits for the last hour
    assert re.fullmatch(r"PIX válido até \d{2}/\d{2} às \d{2}:\d{2}", browser.find("#pix-expiry").text)
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
    assert browser.find("#go-to-content").get_attribute("href").endswith(f"/posts/{post.pk}/")
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


# ---------------------------------------------------------------------------
# On a 390×844 phone: the checkout and the account
# ---------------------------------------------------------------------------
ERROR_FIELDS = ["name", "email", "birth_date", "cpf", "phone"]
SHOWN_ERRORS = """return Array.prototype.filter.call(document.querySelectorAll('#identify-form .field-error'),
  function (p) { return !p.hidden && p.textContent; }).map(function (p) { return p.id.replace('error-', ''); });"""


@pytest.fixture
def shop(settings, live_server):
    settings.SANDBOX_GATEWAY_ALLOWED = True
    settings.SITE_URL = live_server.url
    GatewayFactory(kind="sandbox", is_active=True)
    return PlanFactory(name="Trimestral", price_cents=7990, duration_days=90)


@pytest.fixture
def phone(browser):
    browser.emulate_phone()
    return browser


def fill_the_form(browser, *, email="maria@example.com"):
    browser.find("#id_name").send_keys("Maria Visitante")
    browser.find("#id_email").send_keys(email)
    browser.driver.execute_script("document.getElementById('id_birth_date').value = '1990-05-17'")
    browser.find("#id_cpf").send_keys(VALID_CPF)
    browser.find("#id_phone").send_keys("11987654321")


def test_on_a_phone_the_pix_step_comes_into_view_with_its_qr_and_copy_button(phone, shop):
    # given: a guest on the checkout on a phone
    phone.get(f"/checkout/{shop.pk}/")
    assert phone.driver.execute_script("return [window.innerWidth, window.innerHeight]") == [390, 844]
    # a slim header: one row, no language select (other pages keep theirs)
    header = phone.driver.execute_script("return document.querySelector('.site-header').getBoundingClientRect().height")
    assert header < 60
    assert not phone.find_all("#lang-select")
    fill_the_form(phone)

    # when: "Gerar PIX"
    phone.find("#submit-identify").click()
    phone.wait_for("#pix-qr svg", timeout=15)

    # then: the QR code and the copy button are on screen, below the sticky header, without scrolling
    assert phone.driver.execute_script("return window.scrollY") > 0  # it was scrolled to
    assert phone.in_viewport("#pix-qr") and phone.in_viewport("#copy-code")
    header_bottom = phone.driver.execute_script("return document.querySelector('.site-header').getBoundingClientRect().bottom")
    assert phone.driver.execute_script("return document.getElementById('pix-qr').getBoundingClientRect().top") >= header_bottom
    assert re.fullmatch(r"PIX válido até \d{2}/\d{2} às \d{2}:\d{2}", phone.find("#pix-expiry").text)
    phone.screenshot("checkout-phone")  # docs/screenshots/checkout-phone.png is a copy of this one
    phone.get("/plans/")
    assert phone.find_all("#lang-select")


def test_the_expiry_reads_as_a_date_in_sao_paulo_and_counts_down_calmly_only_in_its_last_hour(phone, shop):
    # given: a PIX step whose charge expires three hours from now
    phone.get(f"/checkout/{shop.pk}/")
    fill_the_form(phone)
    phone.find("#submit-identify").click()
    phone.wait_for("#pix-qr svg", timeout=15)
    checkout = Checkout.objects.get()

    for left, countdown in ((timedelta(hours=3), None), (timedelta(minutes=12, seconds=30), r"· expira em 1[12] min")):
        expires_at = timezone.now() + left
        Checkout.objects.filter(pk=checkout.pk).update(pix_expires_at=expires_at)

        # when: the page shows that charge (back from the bank app: a reload of the same checkout)
        phone.driver.refresh()
        phone.wait_for("#pix-qr svg", timeout=15)

        # then: a date and a time in São Paulo; a countdown in minutes only within the last hour
        expected = timezone.localtime(expires_at, ZoneInfo("America/Sao_Paulo")).strftime("PIX válido até %d/%m às %H:%M")
        assert phone.find("#pix-expiry").text == expected
        if countdown is None:
            assert not phone.find("#pix-countdown").is_displayed()
        else:
            assert re.fullmatch(countdown, phone.find("#pix-countdown").text)
        assert not re.search(r"\d+:\d{2}:\d{2}", phone.text)  # never a ticking clock


def test_an_empty_form_shows_every_error_at_once_and_fixing_a_field_clears_its_own(phone, shop):
    # given: a guest on the checkout
    phone.get(f"/checkout/{shop.pk}/")

    # when: the empty form is sent
    phone.find("#submit-identify").click()
    phone.wait_until(lambda: phone.driver.execute_script(SHOWN_ERRORS), message="no error shown")

    # then: every field says what it needs, the age included, in words a person would use
    assert sorted(phone.driver.execute_script(SHOWN_ERRORS)) == sorted(ERROR_FIELDS)
    texts = {name: phone.find(f"#error-{name}").text for name in ERROR_FIELDS}
    assert texts["name"] == "Informe seu nome completo."
    assert texts["birth_date"] == "Informe sua data de nascimento."
    assert not any("branco" in text or "obrigatório" in text for text in texts.values())
    assert not Checkout.objects.exists()

    # when: the name is typed
    phone.find("#id_name").send_keys("Maria Visitante")

    # then: its error goes at once, the others stay
    assert sorted(phone.driver.execute_script(SHOWN_ERRORS)) == sorted(set(ERROR_FIELDS) - {"name"})
    assert phone.find("#id_name").get_attribute("aria-invalid") is None

    # and an under-age birth date is said together with a wrong CPF
    ten_years_old = (timezone.localdate() - timedelta(days=10 * 365)).isoformat()
    phone.driver.execute_script("document.getElementById('id_birth_date').value = arguments[0]", ten_years_old)
    phone.find("#id_email").send_keys("maria@example.com")
    phone.find("#id_cpf").send_keys("11111111111")
    phone.find("#id_phone").send_keys("11987654321")
    phone.find("#submit-identify").click()
    phone.wait_until(lambda: sorted(phone.driver.execute_script(SHOWN_ERRORS)) == ["birth_date", "cpf"], message="age and CPF not shown together")
    assert "18" in phone.find("#error-birth_date").text


def test_the_paid_summary_lists_the_plan_the_bump_the_coupon_and_the_total(phone, shop):
    # given: a bump, a coupon for the plan, a guest who takes both
    OrderBumpFactory(name="Pack de boas-vindas", price_cents=990)
    coupon = Coupon.objects.create(code="BEMVINDA10", kind=Coupon.Kind.AMOUNT, value=1000)
    coupon.plans.add(shop)
    phone.get(f"/checkout/{shop.pk}/")
    phone.find("label.bump").click()
    fill_the_form(phone)
    phone.find("#id_coupon").send_keys("bemvinda10")
    phone.wait_until(lambda: phone.find("#summary-discount").is_displayed(), message="coupon not applied")

    # when: paid by PIX (the sandbox's postback)
    phone.find("#submit-identify").click()
    phone.wait_for("#pix-qr svg", timeout=15)
    phone.find("#simulate-paid").click()
    phone.wait_for("#step-done", timeout=15)

    # then: the summary keeps every line: plan, coupon, bump, total (79,90 - 10,00 + 9,90)
    summary = phone.find("[data-testid=order-summary]").text
    for line in ("Trimestral", "R$ 79,90", "BEMVINDA10", "-R$ 10,00", "Pack de boas-vindas", "R$ 9,90", "R$ 79,80"):
        assert line in summary
    assert Checkout.objects.get().total_cents == 7980

    # and back on the page later (a reload on return from the bank app), the server lists the same
    phone.driver.refresh()
    phone.wait_for("[data-testid=order-summary]")
    summary = phone.find("[data-testid=order-summary]").text
    for line in ("Trimestral", "BEMVINDA10", "-R$ 10,00", "Pack de boas-vindas", "R$ 9,90", "R$ 79,80"):
        assert line in summary

    # and the account page shows the bump bought
    phone.get("/account/")
    assert "Pack de boas-vindas" in phone.find("[data-testid=history]").text
