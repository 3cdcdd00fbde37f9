"""The admin index (templates/admin/index.html): the site's health first, every word in pt-BR."""

import re

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billing.ledger_models import MoneyAuditRun
from billing.models import ReconciliationItem, WebhookEvent
from integrations.models import WebhookEndpoint

pytestmark = pytest.mark.django_db

ENGLISH_SECTIONS = ["Periodic Tasks", "Periodic tasks", "Clocked", "Crontabs", "Solar events", "Intervals", "Site health"]


def _visible_text(html: str) -> str:
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    html = re.sub(r'<[^>]*class="visually-hidden"[^>]*>.*?</[^>]+>', " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def _health_links(html: str) -> dict[str, str]:
    """The link of each health figure, by its item's id."""
    section = html.split('id="site-health"', 1)[1].split("</section>", 1)[0]
    return dict(re.findall(r'<li id="([\w-]+)"[^>]*>\s*<a href="([^"]+)"', section))


def test_in_pt_br_the_index_shows_no_english_section_name(admin_client):
    text = _visible_text(admin_client.get("/admin/", HTTP_ACCEPT_LANGUAGE="pt-BR").content.decode())

    assert "Tarefas periódicas" in text and "Agendamentos cron" in text and "Saúde do site" in text
    assert [name for name in ENGLISH_SECTIONS if name in text] == []


def test_in_english_the_same_sections_read_in_english(admin_client):
    text = _visible_text(admin_client.get("/admin/", HTTP_ACCEPT_LANGUAGE="en").content.decode())

    assert "Periodic Tasks" in text and "Site health" in text


def test_the_health_figures_appear_and_each_links_to_its_filtered_list(admin_client, make_trouble):
    make_trouble(2)
    ReconciliationItem.objects.filter(transaction_id="tx-0").update(resolved=True)  # one of the two is done

    html = admin_client.get("/admin/", HTTP_ACCEPT_LANGUAGE="pt-BR").content.decode()
    links = _health_links(html)

    text = _visible_text(html)
    assert "2 postbacks com falha ou sem processar nas últimas 24 h" in text
    assert "2 endpoints de saída falhando" in text
    assert "1 item de conciliação aguardando uma pessoa" in text
    assert "Falhou última sincronização white-label" in text
    assert "Auditoria financeira: 2 violações" in text
    assert set(links) == {"health-postbacks", "failing-webhook-endpoints", "health-sync", "health-review", "money-audit"}
    listed = {
        "health-postbacks": WebhookEvent.objects.filter(outcome="failed").count(),
        "failing-webhook-endpoints": WebhookEndpoint.objects.count(),
        "health-review": 1,
        "health-sync": 1,
    }
    for item, expected in listed.items():
        page = admin_client.get(links[item])
        assert page.status_code == 200, item
        assert page.context["cl"].result_count == expected, item
    assert links["money-audit"] == reverse("admin:billing_moneyauditrun_change", args=[MoneyAuditRun.objects.get().pk])


def test_staff_without_the_finance_permission_see_no_money_figure(client, staff_user, make_trouble):
    make_trouble(1)
    staff_user.user_permissions.set(Permission.objects.filter(codename__in=["view_webhookendpoint", "view_syncrun"]))
    client.force_login(staff_user)

    links = _health_links(client.get("/admin/").content.decode())

    assert set(links) == {"failing-webhook-endpoints", "health-sync"}


def test_the_health_costs_the_same_queries_with_more_problems(admin_client, make_trouble):
    def index_queries(n):
        make_trouble(n)
        with CaptureQueriesContext(connection) as queries:
            assert admin_client.get("/admin/").status_code == 200
        return len(queries)

    assert index_queries(1) == index_queries(25)
