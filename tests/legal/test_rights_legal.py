"""Legal pages edited in the admin, linked from every page and accepted at checkout; the cookie consent banner (contract §4, §5)."""

import pytest
from rest_framework.test import APIClient

from billing.models import Checkout
from legal import services
from legal.consent import COOKIE_NAME
from legal.models import ConsentRecord, LegalDocument
from tests.billing.paymentkit import sandbox
from tests.factories import PlanFactory, UserFactory

pytestmark = pytest.mark.django_db


def _published(kind=LegalDocument.Kind.TERMS, **texts):
    texts = {"title_pt_br": "Termos de uso", "body_pt_br": "Primeiro parágrafo.\n\nSegundo parágrafo.", "title_en": "Terms of use", "body_en": "First paragraph.", **texts}
    return services.publish_legal_document(document=services.create_legal_document(kind=kind, **texts))


def test_the_terms_page_shows_the_published_version_in_the_visitors_language(client):
    _published()

    portuguese = client.get("/terms/").content.decode()
    english = client.get("/terms/", HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert "Primeiro parágrafo." in portuguese and "Segundo parágrafo." in portuguese
    assert "First paragraph." in english
    assert client.get("/privacy/").status_code == 404  # nothing published yet


def test_a_new_version_replaces_the_old_only_once_published(client):
    first = _published()
    draft = services.create_legal_document(kind="terms", title_pt_br="Termos", body_pt_br="Texto novo.")
    assert draft.version == first.version + 1
    assert "Texto novo." not in client.get("/terms/").content.decode()

    services.publish_legal_document(document=draft)

    assert "Texto novo." in client.get("/terms/").content.decode()


@pytest.mark.parametrize("path", ["/", "/plans/", "/accounts/login/", "/terms/"])
def test_every_page_links_the_legal_pages_and_the_cookie_preferences(client, path):
    _published()
    page = client.get(path).content.decode()
    assert 'href="/terms/"' in page and 'href="/privacy/"' in page and 'href="/cookies/"' in page


def test_the_admin_edits_and_publishes_legal_pages(admin_client):
    response = admin_client.post(
        "/admin/legal/legaldocument/add/", {"kind": "privacy", "title_pt_br": "Privacidade", "body_pt_br": "Seus dados.", "title_en": "", "body_en": ""}
    )
    assert response.status_code == 302, response.content
    document = LegalDocument.objects.get(kind="privacy")
    assert document.version == 1 and document.published_at is None

    admin_client.post("/admin/legal/legaldocument/", {"action": "publish", "_selected_action": [document.pk]})

    assert "Seus dados." in admin_client.get("/privacy/").content.decode()


def test_the_checkout_records_the_terms_version_in_force_and_when(settings):
    settings.DEBUG, settings.SANDBOX_GATEWAY_ALLOWED = False, True
    sandbox()
    _published()
    terms = _published()  # version 2 is the one in force
    body = {"plan_id": PlanFactory().pk, "payment_method": "pix", "name": "Ana Souza", "email": "ana@example.com", "cpf": "529.982.247-25", "phone": "(11) 98765-4321", "birth_date": "1990-05-17"}

    response = APIClient().post("/api/checkout/process", body, format="json")

    checkout = Checkout.objects.get(public_id=response.json()["checkout_id"])
    assert checkout.terms_version == terms.version == 2 and checkout.terms_accepted_at is not None


def test_the_checkout_page_says_paying_accepts_the_terms(client):
    page = client.get(f"/checkout/{PlanFactory().pk}/").content.decode()
    assert 'data-testid="terms-notice"' in page and 'href="/terms/"' in page


def test_the_consent_banner_shows_until_a_choice_and_has_no_inline_script(client):
    page = client.get("/").content.decode()
    banner = page[page.index('data-testid="consent-banner"'):]
    banner = banner[: banner.index("</aside>")]
    assert "<script" not in banner and "onclick" not in banner  # the site's CSP allows no inline script
    assert client.get("/cookies/").context["consent"].decided is False

    response = client.post("/cookies/", {"choice": "reject", "next": "/plans/"})

    assert response.status_code == 302 and response["Location"] == "/plans/"
    state = client.get("/cookies/").context["consent"]
    assert state.decided and not state.marketing and not state.analytics
    assert 'data-testid="consent-banner"' not in client.get("/").content.decode()
    assert ConsentRecord.objects.get().marketing is False


def test_accepting_or_choosing_is_recorded_and_can_be_changed_from_the_footer(client):
    user = UserFactory()
    client.force_login(user)
    _published(kind=LegalDocument.Kind.PRIVACY)

    client.post("/cookies/", {"choice": "accept"})
    assert client.get("/cookies/").context["consent"].marketing is True
    visitor = client.cookies[COOKIE_NAME].value.split(".")[0]

    assert client.get("/cookies/").status_code == 200
    client.post("/cookies/", {"choice": "choose", "analytics": "on"})

    state = client.get("/cookies/").context["consent"]
    assert (state.analytics, state.marketing) == (True, False)
    records = list(ConsentRecord.objects.order_by("decided_at", "pk"))
    assert [(r.analytics, r.marketing) for r in records] == [(True, True), (True, False)]
    assert {r.visitor_id for r in records} == {visitor} and {r.user_id for r in records} == {user.pk}
    assert records[0].privacy_version == 1
    assert APIClient().get("/api/me/data").status_code in (401, 403)
    api = APIClient()
    api.force_login(user)
    assert len(api.get("/api/me/data").json()["consents"]) == 2


def test_a_forged_consent_cookie_counts_as_no_choice(client):
    client.cookies[COOKIE_NAME] = "<script>.11"
    assert client.get("/cookies/").context["consent"].decided is False
