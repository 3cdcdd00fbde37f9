"""
Journey 3: an admin changes a plan's price to 34,90 in /admin/ and /plans/ shows R$ 34,90; the
admin on a 1366 px laptop: the index's health, the checkout list's columns inside the window.
"""

import os
import shutil
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from billing.models import Checkout
from tests.factories import CheckoutFactory, PlanFactory, UserFactory
from tests.site.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
DOCS_SCREENSHOTS = Path(settings.BASE_DIR) / "docs" / "screenshots"


def test_admin_changes_a_plan_price_and_the_plans_page_shows_it(browser):
    # given
    admin = UserFactory(email="admin@example.com", is_staff=True, is_superuser=True)
    plan = PlanFactory(name="Mensal", price_cents=2990)

    # when: the admin logs in and edits the price, typed in reais
    browser.get("/admin/")
    browser.wait_for("#id_username")
    browser.find("#id_username").send_keys(admin.email)
    browser.find("#id_password").send_keys(PASSWORD)
    browser.find("input[type=submit], button[type=submit]").click()
    browser.wait_for("#content")
    browser.get(f"/admin/billing/plan/{plan.pk}/change/")
    price = browser.find("input[name=price]")  # the plan form's price, typed in reais
    price.clear()
    price.send_keys("34,90")
    browser.screenshot("1-admin-form")
    browser.find("input[name=_save]").click()
    browser.wait_for(".messagelist, ul.messagelist li", visible=False)

    # then: stored in cents, shown in reais on the plans page
    plan.refresh_from_db()
    assert plan.price_cents == 3490
    browser.get("/plans/")
    browser.wait_for("[data-testid=plan-price]")
    assert "R$ 34,90" in browser.find("[data-testid=plan-price]").text
    browser.screenshot("2-plans")



def _log_in_to_the_admin(browser, email):
    browser.get("/admin/")
    browser.wait_for("#id_username")
    browser.find("#id_username").send_keys(email)
    browser.find("#id_password").send_keys(PASSWORD)
    browser.find("input[type=submit], button[type=submit]").click()
    browser.wait_for("#content")


def test_at_1366_px_the_checkout_list_shows_total_and_status_without_scrolling(browser, make_trouble):
    # given: a laptop screen, a few paid checkouts and a site with problems to show
    admin = UserFactory(email="admin@example.com", is_staff=True, is_superuser=True)
    plan = PlanFactory(name="Mensal", price_cents=2990)
    for n in range(5):
        CheckoutFactory(plan=plan, status=Checkout.Status.PAID, paid_at=timezone.now(), customer_email=f"cliente{n:03d}@demo.creatorflix.local")
    make_trouble(2)
    browser.resize(1366, 768)

    # when
    _log_in_to_the_admin(browser, admin.email)
    browser.wait_for("#site-health")
    index = browser.screenshot("admin-index")
    if os.environ.get("DOCS_SCREENSHOTS"):  # DOCS_SCREENSHOTS=1 refreshes the picture docs/site.md shows
        shutil.copyfile(index, DOCS_SCREENSHOTS / "admin-index.png")
    browser.get("/admin/billing/checkout/")
    browser.wait_for("#result_list")
    browser.screenshot("checkout-list")

    # then: the last columns an operator scans are inside the window, not past its right edge
    viewport = browser.driver.execute_script("return document.documentElement.clientWidth")
    for css in ("th.column-total_admin", "th.column-status_admin", "td.field-total_admin", "td.field-status_admin"):
        right = browser.driver.execute_script("return arguments[0].getBoundingClientRect().right", browser.find(css))
        assert right <= viewport, f"{css} ends at {right}px, the window at {viewport}px"
    assert browser.find("td.field-status_admin .badge").text == "Pago"
    assert len(browser.find("th.field-id_admin, td.field-id_admin").text) == 8
