"""
E-mails go out whole in the recipient's language: pt-BR unless the customer
chose English on the site, whatever language the sending process has active.
"""

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone, translation
from django.utils.formats import date_format

from accounts.emails import send_set_password_email
from accounts.models import User
from billing.notifications import send_renewal_notices
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

ENGLISH_RENEWAL = re.compile(r"Your .* subscription ends on")


def renewal_notice(user, end):
    return [user.email, user.name, "Mensal", 2990, "6f0c3a52-3f7a-4a0e-9a53-0d3f3e0c2a11", end.isoformat()]


def formatted(end, language):
    with translation.override(language):
        return date_format(timezone.localtime(end), "DATETIME_FORMAT")


def test_a_renewal_goes_out_whole_in_portuguese_by_default_even_from_an_english_process():
    # given: a customer who never chose a language; the sending process has English active
    user = UserFactory(name="Ana")
    end = timezone.now() + timedelta(days=2)

    # when
    with translation.override("en"):
        send_renewal_notices(notices=[renewal_notice(user, end)])

    # then: subject, text and the date are all Portuguese
    message = mail.outbox[-1]
    assert message.subject == "Sua assinatura CreatorFlix renova em breve"
    assert "Sua assinatura Mensal termina em" in message.body
    assert formatted(end, "pt-br") in message.body  # "3 de Dezembro de 2026 às 20:15"
    assert not ENGLISH_RENEWAL.search(message.body)


def test_a_renewal_goes_out_whole_in_english_for_a_customer_who_chose_english():
    user = UserFactory(name="Ana", language="en")
    end = timezone.now() + timedelta(days=2)

    with translation.override("pt-br"):
        send_renewal_notices(notices=[renewal_notice(user, end)])

    message = mail.outbox[-1]
    assert message.subject == "Your CreatorFlix subscription renews soon"
    assert ENGLISH_RENEWAL.search(message.body)
    assert formatted(end, "en") in message.body  # "Dec. 3, 2026, 8:15 p.m."
    assert "assinatura" not in message.body


def test_one_batch_of_renewals_speaks_each_recipients_language():
    pt, en = UserFactory(), UserFactory(language="en")
    end = timezone.now() + timedelta(days=2)

    send_renewal_notices(notices=[renewal_notice(pt, end), renewal_notice(en, end)])

    subjects = {message.to[0]: message.subject for message in mail.outbox}
    assert subjects == {pt.email: "Sua assinatura CreatorFlix renova em breve", en.email: "Your CreatorFlix subscription renews soon"}


@pytest.mark.parametrize(("language", "greeting"), [("", "Olá, Ana,"), ("en", "Hello Ana,")])
def test_the_set_password_email_speaks_the_recipients_language(language, greeting):
    user = UserFactory(name="Ana Souza", language=language)

    with translation.override("en" if not language else "pt-br"):
        send_set_password_email(user_id=user.pk)

    assert mail.outbox[-1].body.startswith(greeting)


def test_the_language_switch_remembers_a_logged_in_customers_choice(client, user):
    client.force_login(user)

    client.post("/i18n/setlang/", {"language": "en", "next": "/"})

    user.refresh_from_db()
    assert user.language == "en"


def test_a_choice_made_before_signing_up_is_kept_on_the_new_account(client):
    client.post("/i18n/setlang/", {"language": "en", "next": "/"})

    client.post("/accounts/signup/", {"name": "Bob", "email": "bob@example.com", "password1": "s3nha-bem-forte!", "password2": "s3nha-bem-forte!"})

    assert User.objects.get(email="bob@example.com").language == "en"


def test_an_unsupported_language_is_not_remembered(client, user):
    client.force_login(user)

    client.post("/i18n/setlang/", {"language": "xx", "next": "/"})

    user.refresh_from_db()
    assert user.language == ""
