import pytest
from django.core import mail

from accounts.services import get_or_create_customer

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

    monkeypatch.setattr("accounts.emails.send_mail", down)

    with django_capture_on_commit_callbacks(execute=True):
        user, created = get_or_create_customer(email="late@example.com")

    assert created
    assert user.pk
