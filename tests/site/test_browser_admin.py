"""Journey 3: an admin changes a plan's price to 34,90 in /admin/ and /plans/ shows R$ 34,90."""

import pytest

from tests.factories import PlanFactory, UserFactory
from tests.site.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


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

