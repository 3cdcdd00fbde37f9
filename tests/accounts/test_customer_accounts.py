import re

import pytest
from django.core import mail

from accounts.models import User
from accounts.services import get_or_create_customer, register_user

pytestmark = pytest.mark.django_db


def test_an_unknown_payer_gets_an_account_and_a_set_password_email(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        user, created = get_or_create_customer(email="Nova@Example.com", name="Nova")

    assert created and user.email == "nova@example.com"
    assert not user.has_usable_password()
    assert len(mail.outbox) == 1
    assert "/accounts/reset/" in mail.outbox[0].body


def test_a_known_payer_gets_no_new_account(user, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        found, created = get_or_create_customer(email=user.email.upper())

    assert found == user and not created
    assert mail.outbox == []


def test_an_smtp_outage_does_not_fail_the_caller(settings, django_capture_on_commit_callbacks, monkeypatch):
    from smtplib import SMTPServerDisconnected

    def down(*args, **kwargs):
        raise SMTPServerDisconnected("smtp down")

    monkeypatch.setattr("django.core.mail.backends.locmem.EmailBackend.send_messages", down)

    with django_capture_on_commit_callbacks(execute=True):
        user, created = get_or_create_customer(email="late@example.com")

    assert created
    assert user.pk


PASSWORD = "s3nha-bem-forte!"


def _link_path(message) -> str:
    return re.search(r"https?://[^/\s]+(/\S+)", message.body).group(1)


def test_sign_up_sends_a_confirmation_email_in_the_users_language(client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/accounts/signup/",
            {"name": "Caio", "email": "caio@example.com", "password1": PASSWORD, "password2": PASSWORD},
            HTTP_ACCEPT_LANGUAGE="en",
        )

    assert response.status_code == 302
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["caio@example.com"] and message.subject == "Confirm your CreatorFlix e-mail"
    assert "/accounts/confirm-email/" in message.body
    assert User.objects.get(email="caio@example.com").email_confirmed_at is None


def test_a_tampered_confirmation_link_confirms_nothing(client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        register_user(email="caio@example.com", password=PASSWORD, name="Caio")
    path = _link_path(mail.outbox[0])

    client.get(path[:-2] + "xx/")

    assert User.objects.get(email="caio@example.com").email_confirmed_at is None


def test_a_password_reset_link_does_not_confirm_without_setting_the_password(client, django_capture_on_commit_callbacks):
    # The confirmation token has its own salt: a reset token is not a confirmation link.
    with django_capture_on_commit_callbacks(execute=True):
        register_user(email="caio@example.com", password=PASSWORD, name="Caio")
    mail.outbox.clear()
    client.post("/accounts/password-reset/", {"email": "caio@example.com"})
    reset_path = _link_path(mail.outbox[0])

    client.get(reset_path.replace("/accounts/reset/", "/accounts/confirm-email/"))

    assert User.objects.get(email="caio@example.com").email_confirmed_at is None
