import pytest
from django.core.management import call_command

from billing.models import OrderBump, PaymentGateway, Plan

pytestmark = pytest.mark.django_db


def _snapshot():
    from django.contrib.auth import get_user_model

    return (
        sorted(Plan.objects.values_list("name", "price_cents", "duration_days")),
        sorted(OrderBump.objects.values_list("name", "price_cents")),
        sorted(PaymentGateway.objects.values_list("kind", "is_active")),
        sorted(get_user_model().objects.values_list("email", "is_superuser")),
    )


def test_load_demo_twice_gives_the_same_rows(settings, capsys):
    settings.DEBUG = True
    call_command("load_demo")
    first = _snapshot()
    call_command("load_demo")

    assert _snapshot() == first
    assert first[0] == [("Anual", 23990, 365), ("Mensal", 2990, 30), ("Trimestral", 7990, 90)]
    assert ("sandbox", True) in first[2]
    out = capsys.readouterr().out
    assert "admin@creatorflix.local" in out and "password:" in out


def test_the_demo_admin_can_log_in(settings, client):
    settings.DEBUG = True
    from catalog.management.commands.load_demo import DEMO_ADMIN_EMAIL, DEMO_ADMIN_PASSWORD

    call_command("load_demo")

    assert client.login(username=DEMO_ADMIN_EMAIL, password=DEMO_ADMIN_PASSWORD)
    assert client.get("/admin/").status_code == 200


def test_load_demo_refuses_without_debug(settings):
    from django.core.management.base import CommandError

    settings.DEBUG = False
    with pytest.raises(CommandError):
        call_command("load_demo")
