import csv
import io
from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from billing.models import Checkout, OrderBump, PaymentGateway, Plan, Subscription
from tests.factories import CheckoutFactory, GatewayFactory, OrderBumpFactory, PlanFactory, SubscriptionFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, staff_user):
    """Staff with every billing model permission except the finance one."""
    perms = Permission.objects.filter(content_type__app_label="billing").exclude(codename="view_finance")
    staff_user.user_permissions.set(perms)
    client.force_login(staff_user)
    return client


@pytest.fixture
def data():
    plan = PlanFactory(name="Mensal")
    sub = SubscriptionFactory(plan=plan)
    checkout = CheckoutFactory(plan=plan, customer_email="ana@example.com", status=Checkout.Status.PAID, paid_at=timezone.now(), subscription=sub)
    GatewayFactory(kind=PaymentGateway.Kind.SANDBOX, secret_key="sk_test_1234567890abcd")
    OrderBumpFactory()
    return {"plan": plan, "sub": sub, "checkout": checkout}


PAGES = [
    "admin:billing_plan_changelist", "admin:billing_plan_add",
    "admin:billing_orderbump_changelist", "admin:billing_orderbump_add",
    "admin:billing_paymentgateway_changelist", "admin:billing_paymentgateway_add",
    "admin:billing_checkout_changelist", "admin:billing_subscription_changelist", "admin:billing_subscription_add",
    "admin:billing_webhookevent_changelist", "admin:billing_financedashboard_changelist",
]


@pytest.mark.parametrize("name", PAGES)
def test_admin_pages_render_for_a_superuser(admin_client, data, name):
    assert admin_client.get(reverse(name)).status_code == 200


def test_change_pages_render(admin_client, data):
    for url in (
        reverse("admin:billing_plan_change", args=[data["plan"].pk]),
        reverse("admin:billing_checkout_change", args=[data["checkout"].pk]),
        reverse("admin:billing_subscription_change", args=[data["sub"].pk]),
        reverse("admin:billing_paymentgateway_change", args=[PaymentGateway.objects.get().pk]),
    ):
        assert admin_client.get(url).status_code == 200, url


def test_search_checkouts_by_email(admin_client, data):
    CheckoutFactory(customer_email="other@example.com")
    response = admin_client.get(reverse("admin:billing_checkout_changelist"), {"q": "ana@example"})
    assert response.status_code == 200
    assert "ana@example.com" in response.content.decode()
    assert "other@example.com" not in response.content.decode()


@pytest.mark.parametrize(
    "name",
    ["admin:billing_checkout_changelist", "admin:billing_subscription_changelist", "admin:billing_financedashboard_changelist"],
)
def test_money_pages_are_refused_to_staff_without_the_finance_permission(staff_client, data, name):
    assert staff_client.get(reverse(name)).status_code == 403


def test_staff_without_finance_still_manage_plans(staff_client, data):
    assert staff_client.get(reverse("admin:billing_plan_changelist")).status_code == 200


def test_the_finance_permission_opens_the_money_pages(client, staff_user, data):
    perms = Permission.objects.filter(content_type__app_label="billing", codename__in=["view_finance", "view_checkout"])
    staff_user.user_permissions.set(perms)
    client.force_login(staff_user)
    assert client.get(reverse("admin:billing_checkout_changelist")).status_code == 200
    assert client.get(reverse("admin:billing_financedashboard_changelist")).status_code == 200


def test_plan_price_is_typed_in_reais_and_stored_in_cents(admin_client):
    response = admin_client.post(
        reverse("admin:billing_plan_add"),
        {
            "name": "Trimestral", "price": "79,90", "duration_days": 90, "is_active": "on", "display_order": 1,
            "benefits": "Acesso total | Todos os criadores | star\nSuporte", "cta_text": "Assinar", "card_style": "featured",
            "accepts_pix": "on", "checkout_url": "",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    plan = Plan.objects.get(name="Trimestral")
    assert plan.price_cents == 7990
    assert plan.benefits == [
        {"title": "Acesso total", "subtitle": "Todos os criadores", "icon": "star"},
        {"title": "Suporte", "subtitle": "", "icon": ""},
    ]
    page = admin_client.get(reverse("admin:billing_plan_change", args=[plan.pk])).content.decode()
    assert 'value="79,90"' in page
    assert "Acesso total | Todos os criadores | star" in page


def test_plan_form_rejects_a_bad_price(admin_client):
    response = admin_client.post(
        reverse("admin:billing_plan_add"),
        {"name": "X", "price": "abc", "duration_days": 30, "display_order": 0, "cta_text": "x", "card_style": "default", "accepts_pix": "on"},
    )
    assert response.status_code == 200
    assert not Plan.objects.filter(name="X").exists()


def test_order_bump_price_in_reais(admin_client):
    response = admin_client.post(
        reverse("admin:billing_orderbump_add"), {"name": "Pack", "description": "", "price": "9,90", "is_active": "on", "display_order": 0}
    )
    assert response.status_code == 302
    assert OrderBump.objects.get(name="Pack").price_cents == 990


def test_gateway_secret_is_write_only_and_the_postback_url_is_shown(admin_client, settings):
    settings.SITE_URL = "https://loja.example.com"
    settings.JUNGLEPAY_SECRET_KEY = ""
    response = admin_client.post(
        reverse("admin:billing_paymentgateway_add"), {"kind": "junglepay", "public_key": "pk_1", "new_secret_key": "sk_live_secret_9876"}
    )
    assert response.status_code == 302
    gateway = PaymentGateway.objects.get(kind="junglepay")
    assert gateway.secret_key == "sk_live_secret_9876"

    page = admin_client.get(reverse("admin:billing_paymentgateway_change", args=[gateway.pk])).content.decode()
    assert "sk_live_secret_9876" not in page
    assert "9876" in page  # masked, last four
    assert f"https://loja.example.com/api/webhook/junglepay?token={gateway.postback_token}" in page

    # saving without a new secret keeps the stored one
    admin_client.post(reverse("admin:billing_paymentgateway_change", args=[gateway.pk]), {"public_key": "pk_2", "new_secret_key": ""})
    gateway.refresh_from_db()
    assert gateway.secret_key == "sk_live_secret_9876" and gateway.public_key == "pk_2"


def test_postback_urls_per_kind(settings):
    settings.SITE_URL = "https://s.example"
    for kind, path in (("junglepay", "/api/webhook/junglepay"), ("dias", "/api/webhook/dias/payment-sucess"), ("sandbox", "/api/webhook/sandbox")):
        gateway = PaymentGateway(kind=kind, postback_token="tok")
        assert gateway.postback_url == f"https://s.example{path}?token=tok"


def test_activating_a_gateway_switches_the_other_internal_one_off(admin_client):
    sandbox = GatewayFactory(kind="sandbox", is_active=True)
    jungle = GatewayFactory(kind="junglepay", is_active=False)
    dias = GatewayFactory(kind="dias", is_active=True)
    admin_client.post(reverse("admin:billing_paymentgateway_changelist"), {"action": "activate", "_selected_action": [jungle.pk]})
    sandbox.refresh_from_db(); jungle.refresh_from_db(); dias.refresh_from_db()
    assert jungle.is_active and not sandbox.is_active and dias.is_active


def test_checkout_csv_export_masks_the_cpf(admin_client, data):
    response = admin_client.post(
        reverse("admin:billing_checkout_changelist"), {"action": "export_csv", "_selected_action": [data["checkout"].pk]}
    )
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode()
    assert "52998224725" not in body
    rows = list(csv.reader(io.StringIO(body)))
    assert len(rows) == 2
    assert "***.***.***-25" in rows[1] and "ana@example.com" in rows[1]


def test_checkouts_are_read_only(admin_client, data):
    url = reverse("admin:billing_checkout_change", args=[data["checkout"].pk])
    admin_client.post(url, {"status": "refunded"})
    data["checkout"].refresh_from_db()
    assert data["checkout"].status == Checkout.Status.PAID


def test_subscription_actions_call_the_services_and_are_logged(admin_client, data):
    sub = data["sub"]
    url = reverse("admin:billing_subscription_changelist")

    admin_client.post(url, {"action": "cancel_now", "_selected_action": [sub.pk]})
    sub.refresh_from_db()
    assert sub.status == Subscription.Status.CANCELED and sub.last_reason == Subscription.Reason.CANCELED_BY_ADMIN

    admin_client.post(url, {"action": "activate", "_selected_action": [sub.pk]})
    sub.refresh_from_db()
    assert sub.status == Subscription.Status.ACTIVE

    end = sub.end_date
    page = admin_client.post(url, {"action": "extend_days", "_selected_action": [sub.pk]})
    assert page.status_code == 200 and b'name="days"' in page.content
    admin_client.post(url, {"action": "extend_days", "_selected_action": [sub.pk], "apply": "1", "days": "10"})
    sub.refresh_from_db()
    assert sub.end_date == end + timedelta(days=10)

    admin_client.post(url, {"action": "expire", "_selected_action": [sub.pk]})
    sub.refresh_from_db()
    assert sub.status == Subscription.Status.EXPIRED
    assert LogEntry.objects.filter(object_id=str(sub.pk)).count() == 4


def test_a_sold_plan_cannot_be_deleted(admin_client, data):
    response = admin_client.get(reverse("admin:billing_plan_delete", args=[data["plan"].pk]))
    assert response.status_code == 403


def test_subscription_add_creates_a_pending_one(admin_client):
    user, plan = UserFactory(), PlanFactory()
    response = admin_client.post(reverse("admin:billing_subscription_add"), {"user": user.pk, "plan": plan.pk})
    assert response.status_code == 302
    assert Subscription.objects.get(user=user).status == Subscription.Status.PENDING


@pytest.mark.parametrize(
    ("name", "badge"),
    [
        ("admin:billing_subscription_changelist", True),
        ("admin:billing_webhookevent_changelist", True),
        ("admin:billing_reconciliationitem_changelist", False),
        ("admin:integrations_delivery_changelist", True),
        ("admin:integrations_webhookendpoint_changelist", False),
    ],
)
def test_list_pages_fit_a_laptop_screen_with_statuses_as_labels(admin_client, data, make_trouble, name, badge):
    make_trouble(1)

    response = admin_client.get(reverse(name), HTTP_ACCEPT_LANGUAGE="pt-BR")
    columns = [h for h in response.context["result_headers"] if "<input" not in str(h["text"])]

    assert response.context["cl"].result_count >= 1
    assert len(columns) <= 7  # beside the checkbox: what fits 1366 px, the rest on the detail page
    assert ("badge badge-" in response.content.decode()) is badge
