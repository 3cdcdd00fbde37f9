"""The billing pages: plans, the checkout page, the account page."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing import services
from billing.access import user_has_access
from billing.gateways import ChargeStatus
from billing.models import Checkout, PaymentGateway
from tests.factories import CheckoutFactory, GatewayFactory, OrderBumpFactory, PlanFactory, SubscriptionFactory, UserFactory

pytestmark = pytest.mark.django_db


# --- /plans/ ----------------------------------------------------------------
def test_plans_page_shows_active_plans_with_price_benefits_and_cta(client, django_assert_max_num_queries):
    PlanFactory(name="Mensal", price_cents=2990, cta_text="Quero agora", benefits=[{"title": "Tudo liberado", "subtitle": "Sem limites"}])
    PlanFactory(name="Antigo", is_active=False)

    with django_assert_max_num_queries(3):
        response = client.get("/plans/")

    body = response.content.decode()
    assert response.status_code == 200
    assert "Mensal" in body and "R$ 29,90" in body
    assert "Tudo liberado" in body and "Sem limites" in body and "Quero agora" in body
    assert "Antigo" not in body


def test_plan_with_a_marketplace_link_sends_the_buyer_there(client):
    plan = PlanFactory(checkout_url="https://pay.marketplace.test/p/123")

    body = client.get("/plans/").content.decode()
    assert 'href="https://pay.marketplace.test/p/123"' in body
    response = client.get(f"/checkout/{plan.pk}/")
    assert response.status_code == 302
    assert response["Location"] == "https://pay.marketplace.test/p/123"


def test_plans_page_shows_the_current_subscription_and_its_end_date(client):
    subscription = SubscriptionFactory()
    client.force_login(subscription.user)

    response = client.get("/plans/")

    body = response.content.decode()
    assert response.context["subscription"] == subscription
    assert 'data-testid="current-subscription"' in body
    assert timezone.localtime(subscription.end_date).strftime("%d/%m/%Y") in body


# --- /checkout/<plan_id>/ ---------------------------------------------------
def test_checkout_page_has_the_identification_form_bumps_and_summary(client, plan):
    OrderBumpFactory(name="Pack extra", price_cents=990)
    OrderBumpFactory(name="Inativo", is_active=False)

    response = client.get(f"/checkout/{plan.pk}/")

    body = response.content.decode()
    assert response.status_code == 200
    for field in ("id_name", "id_email", "id_cpf", "id_phone"):
        assert f'id="{field}"' in body
        assert f'for="{field}"' in body
    assert 'id="error-cpf"' in body
    assert "Pack extra" in body and "R$ 9,90" in body and "Inativo" not in body
    assert response.context["page_data"]["plan"] == {"id": plan.pk, "name": plan.name, "price_cents": 2990}
    assert 'id="checkout-data"' in body and "js/checkout.js" in body


def test_checkout_page_prefills_a_logged_in_user(client, user, plan):
    client.force_login(user)

    body = client.get(f"/checkout/{plan.pk}/").content.decode()

    assert f'value="{user.email}"' in body


def test_checkout_page_of_an_inactive_or_unknown_plan_is_404(client):
    plan = PlanFactory(is_active=False)

    assert client.get(f"/checkout/{plan.pk}/").status_code == 404
    assert client.get("/checkout/999999/").status_code == 404


@pytest.mark.parametrize(
    ("kind", "allowed", "shown"),
    [("sandbox", True, True), ("sandbox", False, False), ("junglepay", True, False)],
)
def test_simulate_button_only_under_an_allowed_sandbox(client, settings, plan, kind, allowed, shown):
    settings.SANDBOX_GATEWAY_ALLOWED = allowed
    GatewayFactory(kind=kind, is_active=True)

    response = client.get(f"/checkout/{plan.pk}/")

    assert response.context["page_data"]["sandbox"] is shown
    assert ('id="simulate-paid"' in response.content.decode()) is shown


def test_checkout_page_resumes_a_checkout_by_its_uuid_and_ignores_garbage(client, plan):
    checkout = CheckoutFactory(plan=plan)

    good = client.get(f"/checkout/{plan.pk}/", {"checkout": str(checkout.public_id)})
    bad = client.get(f"/checkout/{plan.pk}/", {"checkout": "'; drop table"})

    assert good.context["page_data"]["resume_checkout_id"] == str(checkout.public_id)
    assert bad.context["page_data"]["resume_checkout_id"] == ""


@pytest.mark.parametrize(
    ("next_url", "lands_on"),
    [
        ("/posts/7/", "/posts/7/"),
        ("", "/models/"),
        ("https://evil.example/posts/7/", "/models/"),
        ("//evil.example/", "/models/"),
        ("javascript:alert(1)", "/models/"),
    ],
)
def test_the_paid_checkout_leads_back_to_the_page_the_buyer_subscribed_from(client, plan, next_url, lands_on):
    # given: a locked post's "See plans" → the plans page → the plan's checkout, carrying where the buyer was
    plans = client.get("/plans/", {"next": next_url}).content.decode()
    if lands_on != "/models/":
        assert f'href="/checkout/{plan.pk}/?next={next_url}"' in plans

    response = client.get(f"/checkout/{plan.pk}/", {"next": next_url})

    # then: "See the content" goes back there, and never to another site
    assert f'href="{lands_on}" id="go-to-content"' in response.content.decode()


# --- /account/ --------------------------------------------------------------
def test_account_needs_a_login(client):
    response = client.get("/account/")

    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_account_created_by_a_payment_invites_to_create_a_password_without_requiring_it(client):
    from tests.factories import UserFactory

    buyer = UserFactory(email="ana@example.com")
    buyer.set_unusable_password()
    buyer.save()
    client.force_login(buyer)

    page = client.get("/account/").content.decode()

    assert 'data-testid="set-password-invitation"' in page
    assert 'name="email" value="ana@example.com"' in page


def test_account_with_a_password_has_no_invitation(client, user):
    client.force_login(user)

    assert 'data-testid="set-password-invitation"' not in client.get("/account/").content.decode()


def test_account_without_subscription_points_to_the_plans(client, user):
    client.force_login(user)

    response = client.get("/account/")

    assert response.status_code == 200
    assert response.context["subscription"] is None
    assert 'href="/plans/"' in response.content.decode()


def test_account_shows_subscription_status_end_date_history_and_change_plan(client, django_assert_max_num_queries):
    subscription = SubscriptionFactory()
    user = subscription.user
    other = PlanFactory(name="Anual", price_cents=23990, duration_days=365)
    for _ in range(5):
        CheckoutFactory(user=user, plan=subscription.plan, status=Checkout.Status.PAID)
    CheckoutFactory(customer_email=user.email.upper(), plan=other)  # pending, not yet linked to the user
    CheckoutFactory(plan=other)  # someone else's
    client.force_login(user)

    with django_assert_max_num_queries(8):
        response = client.get("/account/")

    body = response.content.decode()
    assert response.context["subscription"] == subscription
    assert len(response.context["history"]) == 6
    assert timezone.localtime(subscription.end_date).strftime("%d/%m/%Y") in body
    assert [p.name for p in response.context["other_plans"]] == ["Anual"]
    assert 'action="/account/cancel/"' in body
    assert 'action="/account/change-plan/"' in body


def pay_on_the_marketplace(user, *, external_id: str, at, amount_cents: int = 2990):
    """A Dias payment of `user` confirmed at `at` (its receipt is read from the ledger)."""
    services.record_marketplace_payment(
        external_id=external_id, status=ChargeStatus.PAID, amount_cents=amount_cents, email=user.email, name=user.name, now=at
    )


@pytest.fixture
def marketplace_plan():
    GatewayFactory(kind=PaymentGateway.Kind.DIAS)
    return PlanFactory(name="Mensal", price_cents=2990, duration_days=30)


def test_account_history_merges_marketplace_payments_newest_first_with_their_receipts(client, marketplace_plan):
    # given: a checkout between two marketplace payments
    user = UserFactory()
    now = timezone.now()
    pay_on_the_marketplace(user, external_id="dias-1", at=now - timedelta(days=20))
    checkout = CheckoutFactory(user=user, plan=marketplace_plan, status=Checkout.Status.PAID, created_at=now - timedelta(days=10))
    pay_on_the_marketplace(user, external_id="dias-2", at=now - timedelta(days=1))
    client.force_login(user)

    # when
    response = client.get("/account/")

    # then
    rows = response.context["history"]
    assert [row.receipt.transaction_id if row.receipt else row.checkout for row in rows] == ["dias-2", checkout, "dias-1"]
    body = response.content.decode()
    marketplace_rows = body.split('data-testid="history-marketplace"')[1:]
    assert len(marketplace_rows) == 2
    newest = marketplace_rows[0].split("</tr>")[0]
    assert timezone.localtime(now - timedelta(days=1)).strftime("%d/%m/%Y") in newest
    assert "Mensal · 30 dias" in newest and "R$ 29,90" in newest and "Marketplace" in newest and "Pago" in newest
    assert 'href="/account/receipts/marketplace/dias-2/"' in newest
    assert "Forma de pagamento" in body


def test_account_history_of_marketplace_payments_is_in_english_too(client, marketplace_plan):
    user = UserFactory(language="en")
    pay_on_the_marketplace(user, external_id="dias-1", at=timezone.now())
    client.force_login(user)

    body = client.get("/account/", HTTP_ACCEPT_LANGUAGE="en").content.decode()

    row = body.split('data-testid="history-marketplace"')[1].split("</tr>")[0]
    assert "Mensal · 30 days" in row and "Marketplace" in row and ">Paid<" in row and ">Method<" in body


def test_account_history_takes_the_same_queries_however_long_it_grows(client, marketplace_plan):
    user = UserFactory()
    now = timezone.now()
    CheckoutFactory(user=user, plan=marketplace_plan, status=Checkout.Status.PAID)
    pay_on_the_marketplace(user, external_id="dias-0", at=now - timedelta(days=40))
    client.force_login(user)
    client.get("/account/")  # warm the per-process caches (content types, site settings)
    with CaptureQueriesContext(connection) as short:
        client.get("/account/")

    for n in range(1, 6):
        CheckoutFactory(user=user, plan=marketplace_plan, status=Checkout.Status.PAID, items=[{}, {"title": f"Bônus {n}", "unit_price_cents": 990}])
        pay_on_the_marketplace(user, external_id=f"dias-{n}", at=now - timedelta(days=40 - n))
    with CaptureQueriesContext(connection) as long:
        response = client.get("/account/")

    assert len(response.context["history"]) == 12
    assert len(long.captured_queries) == len(short.captured_queries)


def test_account_links_to_a_due_renewal_charge(client):
    subscription = SubscriptionFactory(end_date=timezone.now() + timedelta(days=2))
    renewal = CheckoutFactory(
        user=subscription.user, plan=subscription.plan, subscription=subscription, purpose=Checkout.Purpose.RENEWAL
    )
    client.force_login(subscription.user)

    response = client.get("/account/")

    assert response.context["renewal"] == renewal
    assert f"/checkout/{renewal.plan_id}/?checkout={renewal.public_id}" in response.content.decode()


def test_account_of_a_canceled_at_period_end_subscription_offers_no_second_cancel(client):
    subscription = SubscriptionFactory(cancel_at_period_end=True)
    client.force_login(subscription.user)

    body = client.get("/account/").content.decode()

    assert 'action="/account/cancel/"' not in body
    assert 'data-testid="subscription-status"' in body


def test_cancel_without_a_live_subscription_says_so(client, user):
    client.force_login(user)

    response = client.post("/account/cancel/", follow=True)

    assert response.redirect_chain[-1][0] == "/account/"
    assert len(list(response.context["messages"])) == 1


def test_change_plan_to_an_unknown_plan_says_so(client):
    subscription = SubscriptionFactory()
    client.force_login(subscription.user)

    response = client.post("/account/change-plan/", {"plan_id": "abc"}, follow=True)

    assert [m.level_tag for m in response.context["messages"]] == ["error"]


def test_account_actions_need_post_and_login(client, user):
    assert client.post("/account/cancel/").status_code == 302  # to the login page
    client.force_login(user)
    assert client.get("/account/cancel/").status_code == 405


def test_gateway_kind_is_the_active_one(db):
    # Guard for the simulate flag: only an active sandbox counts.
    GatewayFactory(kind=PaymentGateway.Kind.SANDBOX, is_active=False)
    from billing.views import sandbox_enabled

    assert sandbox_enabled() is False


# --- account actions, through billing.services ------------------------------
def test_cancel_at_period_end_from_the_account_page_keeps_access(client):
    subscription = SubscriptionFactory()
    client.force_login(subscription.user)

    response = client.post("/account/cancel/", {"reason": "  Caro demais  "}, follow=True)

    subscription.refresh_from_db()
    assert subscription.cancel_at_period_end is True
    assert subscription.status == "active"
    assert subscription.cancel_reason == "Caro demais"
    assert [m.level_tag for m in response.context["messages"]] == ["success"]
    assert user_has_access(subscription.user)


def test_upgrade_from_the_account_page_leads_to_the_pix_of_the_difference(client):
    subscription = SubscriptionFactory(plan=PlanFactory(price_cents=2990, duration_days=30))
    bigger = PlanFactory(name="Trimestral", price_cents=7990, duration_days=90)
    client.force_login(subscription.user)

    response = client.post("/account/change-plan/", {"plan_id": bigger.pk})

    upgrade = Checkout.objects.get(purpose=Checkout.Purpose.UPGRADE)
    assert response.status_code == 302
    assert response["Location"] == f"/checkout/{bigger.pk}/?checkout={upgrade.public_id}"
    assert 0 < upgrade.total_cents < 7990  # the unused days are credited


def test_downgrade_from_the_account_page_is_scheduled_for_the_renewal(client):
    subscription = SubscriptionFactory(plan=PlanFactory(price_cents=7990, duration_days=90))
    smaller = PlanFactory(name="Mensal", price_cents=2990)
    client.force_login(subscription.user)

    response = client.post("/account/change-plan/", {"plan_id": smaller.pk}, follow=True)

    subscription.refresh_from_db()
    assert subscription.next_plan == smaller
    assert [m.level_tag for m in response.context["messages"]] == ["success"]
    assert "Mensal" in response.content.decode()


def test_the_renewal_email_link_opens_the_pix_step_of_that_checkout(client):
    from billing.notifications import checkout_link

    checkout = CheckoutFactory(purpose=Checkout.Purpose.RENEWAL)
    link = checkout_link(checkout.public_id)
    assert link.endswith(f"/checkout/pay/{checkout.public_id}/")

    response = client.get(f"/checkout/pay/{checkout.public_id}/")

    assert response.status_code == 302
    assert response["Location"] == f"/checkout/{checkout.plan_id}/?checkout={checkout.public_id}"


def test_checkout_page_tells_a_subscriber_they_already_have_a_plan(client):
    subscription = SubscriptionFactory()
    client.force_login(subscription.user)

    body = client.get(f"/checkout/{subscription.plan_id}/").content.decode()

    assert 'data-testid="already-subscribed"' in body
    assert 'href="/account/"' in body


def test_a_subscriber_switches_plan_from_the_plans_page(client):
    subscription = SubscriptionFactory(plan=PlanFactory(name="Anual", price_cents=23990, duration_days=365))
    smaller = PlanFactory(name="Mensal", price_cents=2990)
    client.force_login(subscription.user)

    body = client.get("/plans/").content.decode()
    assert 'data-testid="plan-switch"' in body
    response = client.post("/account/change-plan/", {"plan_id": smaller.pk})

    subscription.refresh_from_db()
    assert response.status_code == 302
    assert subscription.next_plan == smaller
