"""billing/admin/checkouts.py: the checkout list an operator scans and the page behind each row."""

import pytest
from django.urls import reverse
from django.utils import timezone

from billing.models import Checkout
from tests.factories import CheckoutFactory, PlanFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def paid_checkout():
    return CheckoutFactory(
        plan=PlanFactory(name="Mensal", price_cents=2990),
        status=Checkout.Status.PAID,
        paid_at=timezone.now(),
        customer_document="52998224725",
        customer_phone="11912345678",
        items=[{"title": "Mensal", "quantity": 1, "unit_price_cents": 2990}],
    )


def test_the_change_page_masks_the_cpf_and_formats_the_phone(admin_client, paid_checkout):
    page = admin_client.get(reverse("admin:billing_checkout_change", args=[paid_checkout.pk])).content.decode()

    assert "***.***.***-25" in page
    assert "529.982.247-25" not in page and "52998224725" not in page
    assert "(11) 91234-5678" in page and "11912345678" not in page


def test_the_change_page_shows_the_items_as_a_table_and_the_status_as_a_label(admin_client, paid_checkout):
    page = admin_client.get(reverse("admin:billing_checkout_change", args=[paid_checkout.pk]), HTTP_ACCEPT_LANGUAGE="pt-BR")
    html = page.content.decode()

    assert '<table class="items">' in html and "unit_price_cents" not in html
    assert '<span class="badge badge-success">Pago</span>' in html


def test_the_list_shows_the_columns_an_operator_scans_first(admin_client, paid_checkout):
    response = admin_client.get(reverse("admin:billing_checkout_changelist"), HTTP_ACCEPT_LANGUAGE="pt-BR")
    headers = [str(header["text"]) for header in response.context["result_headers"] if "<input" not in str(header["text"])]
    html = response.content.decode()

    assert [h.lower() for h in headers] == ["id", "e-mail do cliente", "plano", "total", "status", "forma de pagamento", "pago em"]
    assert f'<code class="short-id" title="{paid_checkout.public_id}">{str(paid_checkout.public_id)[:8]}</code>' in html
    assert "R$ 29,90" in html and "badge-success" in html
    assert str(paid_checkout.public_id) + "<" not in html  # the whole uuid never as a cell's text
