"""Journey 2: a subscriber cancels at period end from /account/ and still sees the content."""

import pytest

from billing.models import Subscription
from tests.factories import PlanFactory, SubscriptionFactory
from tests.site.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_subscriber_cancels_at_period_end_and_keeps_access(browser, catalog_storage, make_creator, make_post):
    # given: an active subscriber and a post
    subscription = SubscriptionFactory(plan=PlanFactory(name="Mensal"))
    post = make_post(make_creator(name="Bela Santos"), title="Bastidores")

    # when: they cancel from their account page, with a reason
    log_in(browser, subscription.user.email)
    browser.get("/account/")
    browser.wait_for("[data-testid=subscription]")
    browser.find("details.cancel summary").click()
    browser.find("#cancel-reason").send_keys("Vou viajar por uns meses")
    browser.find("#cancel-submit").click()
    browser.wait_until(lambda: _accept_confirm(browser), message="no confirmation asked")
    browser.wait_for(".message-success")
    browser.screenshot("1-canceled")

    # then: canceled at period end, access kept until end_date, shown as such
    subscription.refresh_from_db()
    assert subscription.cancel_at_period_end is True
    assert subscription.status == Subscription.Status.ACTIVE
    assert subscription.cancel_reason == "Vou viajar por uns meses"
    assert not browser.find_all("#cancel-submit")
    assert subscription.end_date.astimezone().strftime("%d/%m/%Y") in browser.find("[data-testid=end-date]").text or browser.find(
        "[data-testid=end-date]"
    ).text

    # and the content is still open to them
    browser.get(f"/posts/{post.pk}/")
    browser.wait_for("[data-testid=media]")
    assert not browser.find_all("[data-testid=locked]")
    browser.screenshot("2-still-unlocked")


def _accept_confirm(browser):
    from selenium.common.exceptions import NoAlertPresentException

    try:
        browser.driver.switch_to.alert.accept()
    except NoAlertPresentException:
        return False
    return True


def test_subscriber_pays_a_due_renewal_from_the_account_page(browser, settings):
    from datetime import timedelta

    from django.utils import timezone

    from billing.models import Checkout
    from tests.factories import CheckoutFactory, GatewayFactory

    # given: a subscription ending in two days with its renewal charge issued
    settings.SANDBOX_GATEWAY_ALLOWED = True
    GatewayFactory(kind="sandbox", is_active=True)
    subscription = SubscriptionFactory(plan=PlanFactory(name="Mensal", price_cents=2990), end_date=timezone.now() + timedelta(days=2))
    old_end = subscription.end_date
    renewal = CheckoutFactory(
        user=subscription.user, plan=subscription.plan, subscription=subscription, purpose=Checkout.Purpose.RENEWAL,
        customer_email=subscription.user.email,
    )

    # when: they follow the account page's link to pay it, and the payment arrives
    log_in(browser, subscription.user.email)
    browser.get("/account/")
    browser.find("[data-testid=renewal] a.button").click()
    browser.wait_for("#pix-qr svg", timeout=15)
    assert not browser.find("#step-identify").is_displayed()  # straight to the PIX step
    assert "29,90" in browser.find("#pay-total").text
    browser.screenshot("1-renewal-pix")
    browser.find("#simulate-paid").click()
    browser.wait_for("#step-done", timeout=15)

    # then: the period is extended from the old end date, not from today
    renewal.refresh_from_db()
    subscription.refresh_from_db()
    assert renewal.status == Checkout.Status.PAID
    assert subscription.end_date == old_end + timedelta(days=30)
    browser.get("/account/")
    assert not browser.find_all("[data-testid=renewal]")
    browser.screenshot("2-renewed")
