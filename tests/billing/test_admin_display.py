"""billing/admin/display.py: values shown to people, not as stored."""

import uuid

import pytest

from billing.admin.display import benefits_text, format_phone, items_table, short_id, status_badge, tracking_text


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ("11912345678", "(11) 91234-5678"),
        ("1132345678", "(11) 3234-5678"),
        ("+55 11 91234-5678", "(11) 91234-5678"),
        ("12345", "12345"),  # not a Brazilian phone: as stored
        ("", "—"),
    ],
)
def test_a_phone_reads_with_its_area_code_in_brackets(stored, shown):
    assert format_phone(stored) == shown


def test_a_status_is_a_coloured_label_toned_by_its_value():
    assert status_badge("paid", "Pago") == '<span class="badge badge-success">Pago</span>'
    assert 'badge-warning">Pendente' in status_badge("pending", "Pendente")
    assert 'badge-error">Falhou' in status_badge("failed", "Falhou")
    assert 'badge-muted">Expirado' in status_badge("expired", "Expirado")


def test_a_short_id_is_eight_monospace_characters_with_the_whole_id_in_its_tooltip():
    value = uuid.UUID("a5768898-7ec2-4df2-86b3-6095365531ca")

    assert short_id(value) == f'<code class="short-id" title="{value}">a5768898</code>'
    assert short_id(value, url="/admin/x/").startswith('<a href="/admin/x/" class="short-id"')
    assert short_id(None) == "—"


def test_items_are_a_table_with_each_line_total():
    html = items_table([{"title": "Mensal", "quantity": 1, "unit_price_cents": 2990}, {"title": "Bônus", "quantity": 2, "unit_price_cents": 500}])

    assert html.startswith('<table class="items">')
    assert "<td>Bônus</td><td class=\"num\">2</td><td class=\"num\">R$ 5,00</td><td class=\"num\">R$ 10,00</td>" in html
    assert "unit_price_cents" not in html


def test_benefits_read_without_their_icon_names():
    shown = benefits_text([{"title": "Acesso total", "subtitle": "Fotos e vídeos", "icon": "unlock"}, {"title": "Novidades", "icon": "sparkles"}])

    assert shown == "Acesso total — Fotos e vídeos · Novidades"


def test_tracking_reads_as_first_and_last_touch_not_json():
    shown = tracking_text({"first": {"utm_source": "instagram"}, "last": {"utm_source": "google", "utm_campaign": "natal"}})

    assert "{" not in shown and "utm_source google · utm_campaign natal" in shown
    assert tracking_text(None) == "—"
