"""Transactional e-mails (config/emails.py): the plain text, and the same words in the site's HTML layout with the seller."""

import pytest
from django.core import mail
from django.utils import timezone, translation

from accounts.emails import send_set_password_email
from billing.notifications import send_renewal_notices
from config.emails import transactional_email
from tests.factories import UserFactory


@pytest.fixture(autouse=True)
def seller(settings):
    settings.SELLER_NAME = "CreatorFlix Conteúdo Digital Ltda."
    settings.SELLER_DOCUMENT = "12345678000190"
    settings.SUPPORT_EMAIL = "suporte@creatorflix.example"


def html_of(message) -> str:
    [(html, kind)] = message.alternatives
    assert kind == "text/html"
    return html


def test_an_email_has_its_text_and_the_same_words_in_the_html_layout():
    message = transactional_email(subject="Assunto", body="Olá Ana,\n\nPague aqui: https://example.com/pagar\n\nCreatorFlix", to=["ana@example.com"])

    html = html_of(message)
    assert message.body.startswith("Olá Ana,")
    assert "<p>Olá Ana,</p>" in html and '<a href="https://example.com/pagar"' in html
    assert "CreatorFlix Conteúdo Digital Ltda." in html and "12.345.678/0001-90" in html and "mailto:suporte@creatorflix.example" in html


@pytest.mark.django_db
def test_the_set_password_email_is_html_and_text_in_the_recipients_language():
    user = UserFactory(language="en")

    send_set_password_email(user_id=user.pk)

    [message] = mail.outbox
    assert "/reset/" in message.body
    assert 'lang="en"' in html_of(message) and "Sold by" in html_of(message)


@pytest.mark.django_db
def test_renewal_notices_are_html_and_text_in_portuguese_by_default():
    with translation.override("en"):
        send_renewal_notices(notices=[["ana@example.com", "Ana", "Mensal", 2990, "00000000-0000-0000-0000-000000000001", timezone.now().isoformat()]])

    [message] = mail.outbox
    assert message.subject == "Sua assinatura CreatorFlix renova em breve"
    assert 'lang="pt-br"' in html_of(message) and "Vendido por" in html_of(message)


@pytest.mark.django_db
def test_the_password_reset_email_has_the_html_layout(client):
    UserFactory(email="ana@example.com")

    client.post("/accounts/password-reset/", {"email": "ana@example.com"})

    [message] = mail.outbox
    assert "/reset/" in message.body and "/reset/" in html_of(message)
