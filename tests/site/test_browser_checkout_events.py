"""
Paid → watching in the browser: the checkout page learns of the payment from
its event stream (checkout-events.js), signs the guest in where they paid, and
the post opens with no e-mail; when the stream breaks it polls instead.
"""

import pytest
from django.utils import timezone

from billing import services
from billing.api import events
from billing.models import Checkout
from tests.factories import GatewayFactory, PlanFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

POLLS = """return performance.getEntriesByType('resource').map(function (e) { return e.name; })
  .filter(function (name) { return /\\/api\\/checkout\\/[0-9a-f-]{36}$/.test(name); }).length;"""


def reach_the_pix(browser, plan):
    browser.get(f"/checkout/{plan.pk}/")
    browser.find("#id_name").send_keys("Maria Visitante")
    browser.find("#id_email").send_keys("maria@example.com")
    browser.driver.execute_script("document.getElementById('id_birth_date').value = '1990-05-17'")
    browser.find("#id_cpf").send_keys("52998224725")
    browser.find("#id_phone").send_keys("11987654321")
    browser.find("#submit-identify").click()
    browser.wait_for("#pix-qr svg", timeout=15)
    return Checkout.objects.get()


def pay(checkout):
    services.activate_checkout(checkout=checkout, paid_at=timezone.now())


@pytest.fixture
def shop(settings):
    settings.SANDBOX_GATEWAY_ALLOWED = True
    settings.CHECKOUT_EVENTS_HEARTBEAT_SECONDS = 1
    GatewayFactory(kind="sandbox", is_active=True)
    return PlanFactory(name="Mensal", price_cents=2990)


def test_a_guest_on_a_phone_sees_the_payment_pushed_and_the_media_unlocked_where_they_paid(
    browser, shop, live_media, make_creator, make_post
):
    # given: a creator's post, and a guest on a 390×844 phone waiting on the PIX step
    creator = make_creator(name="Luna Ribeiro", slug="luna-ribeiro")
    post = make_post(creator, title="Ensaio", images=1)
    live_media()
    browser.emulate_phone()
    checkout = reach_the_pix(browser, shop)
    browser.wait_until(lambda: browser.driver.execute_script("return !!window.CheckoutEvents"))

    # when: the payment is applied elsewhere (JunglePay's postback, not this page's buttons)
    pay(checkout)

    # then: pushed to the page, which never polled, and signs the guest in
    browser.wait_for("#step-done", timeout=10)
    assert browser.driver.execute_script(POLLS) == 0
    browser.wait_for("#signed-in-note", timeout=10)

    # and in the same tab, with no e-mail opened, the post's media is unlocked and loads
    browser.get(f"/posts/{post.pk}/")
    browser.wait_for("main")
    if browser.find_all("[data-testid=age-gate]"):
        browser.find("#age-gate-confirm").click()
        browser.wait_for("main")
    assert not browser.find_all("[data-testid=locked]")
    browser.wait_until(
        lambda: browser.driver.execute_script("var i = document.querySelector('[data-testid=media] img'); return !!i && i.naturalWidth > 0"),
        message="the unlocked image did not load",
    )
    assert [e["message"] for e in browser.js_errors()] == []


def test_the_page_polls_when_the_stream_breaks(browser, shop, monkeypatch):
    # given: an event stream that breaks at once (a proxy cutting it, a server without it)
    def broken(*args, **kwargs):
        raise ConnectionError("the stream broke")
        yield  # unreachable: makes this a generator, like the real stream

    monkeypatch.setattr(events, "stream_sync", broken)
    checkout = reach_the_pix(browser, shop)

    # when: paid
    pay(checkout)

    # then: the page found out by polling
    browser.wait_for("#step-done", timeout=15)
    assert browser.driver.execute_script(POLLS) >= 1
