"""Who sells (contract §2): named in every page's footer; billing.W001 while unset with DEBUG off; legal.W001 likewise for the legal pages."""

import pytest
from django.utils import timezone

from billing.checks import seller_named
from config.seller import format_document, get_seller
from legal.checks import legal_pages_published
from legal.models import LegalDocument

SELLER = {
    "SELLER_NAME": "CreatorFlix Conteúdo Digital Ltda.",
    "SELLER_DOCUMENT": "12345678000190",
    "SELLER_ADDRESS": "Av. Paulista, 1000, São Paulo - SP",
    "SUPPORT_EMAIL": "suporte@creatorflix.example",
}


@pytest.fixture
def seller_settings(settings):
    for name, value in SELLER.items():
        setattr(settings, name, value)
    return settings


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/", "/plans/", "/accounts/login/", "/terms/"])
def test_every_page_footer_names_the_seller(client, seller_settings, path):
    page = client.get(path, follow=True).content.decode()

    assert 'data-testid="footer-seller"' in page
    assert "CreatorFlix Conteúdo Digital Ltda." in page and "12.345.678/0001-90" in page
    assert "Av. Paulista, 1000" in page and "mailto:suporte@creatorflix.example" in page


def test_documents_are_shown_formatted():
    assert format_document("12345678000190") == "12.345.678/0001-90"
    assert format_document("529.982.247-25") == "529.982.247-25"
    assert format_document("52998224725") == "529.982.247-25"


def test_billing_w001_warns_while_the_seller_is_unset_with_debug_off(settings):
    settings.DEBUG = False
    settings.SELLER_NAME = ""
    settings.SUPPORT_EMAIL = ""

    warnings = seller_named()

    assert [warning.id for warning in warnings] == ["billing.W001"]
    assert "SELLER_NAME" in warnings[0].msg and "SUPPORT_EMAIL" in warnings[0].msg


def test_billing_w001_is_quiet_when_set_or_in_debug(settings, seller_settings):
    settings.DEBUG = False
    assert seller_named() == []
    settings.SELLER_NAME = ""
    settings.DEBUG = True
    assert seller_named() == []
    assert get_seller().name == ""


@pytest.mark.django_db
def test_legal_w001_warns_while_terms_or_privacy_is_unpublished(settings):
    settings.DEBUG = False
    LegalDocument.objects.create(kind=LegalDocument.Kind.TERMS, version=1, title_pt_br="Termos", body_pt_br="...", published_at=timezone.now())

    warnings = legal_pages_published(databases=["default"])

    assert [warning.id for warning in warnings] == ["legal.W001"]
    LegalDocument.objects.create(kind=LegalDocument.Kind.PRIVACY, version=1, title_pt_br="Privacidade", body_pt_br="...", published_at=timezone.now())
    assert legal_pages_published(databases=["default"]) == []
