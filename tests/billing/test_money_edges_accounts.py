"""
Issue 11, accounts & ownership: a payment-created account can always get a
password (defect 10); a guest payment goes only to an account whose owner
proved the mailbox (defect 11, contract §3).
"""

import re
from datetime import date, timedelta

import pytest
from django.core import mail
from django.utils import timezone

from accounts.models import User
from accounts.services import confirm_email, register_user
from billing.access import user_has_access
from billing.models import Checkout, Subscription
from billing.services import activate_checkout, claim_guest_payments, create_checkout, refund_checkout
from tests.factories import PlanFactory, UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "s3nha-bem-forte!"


def _guest_checkout(plan, email="vitima@example.com"):
    # Declared of age at checkout, as /api/checkout/process requires since age assurance (contract §8).
    return create_checkout(
        plan=plan, customer_name="Vitória", customer_email=email, customer_birth_date=date(1990, 5, 17), now=timezone.now()
    )


def _link_path(message) -> str:
    return re.search(r"https?://[^/\s]+(/\S+)", message.body).group(1)


def _set_password_through(client, path) -> None:
    # The reset link redirects once to a session-held URL, then takes the new password.
    response = client.get(path, follow=True)
    assert response.status_code == 200
    set_url = response.redirect_chain[-1][0] if response.redirect_chain else path
    response = client.post(set_url, {"new_password1": PASSWORD, "new_password2": PASSWORD})
    assert response.status_code == 302, response.context["form"].errors if response.context else response


# --- defect 10 ------------------------------------------------------------


def test_an_account_created_by_a_payment_can_ask_for_a_password_reset_and_log_in(client, django_capture_on_commit_callbacks):
    # given: a guest paid; the account it created has no usable password and the first e-mail was lost
    with django_capture_on_commit_callbacks(execute=True):
        activate_checkout(checkout=_guest_checkout(PlanFactory()))
    user = User.objects.get(email="vitima@example.com")
    assert not user.has_usable_password()
    mail.outbox.clear()

    # when: they ask for a reset on the real page and follow the link
    response = client.post("/accounts/password-reset/", {"email": "Vitima@Example.com"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["vitima@example.com"]
    _set_password_through(client, _link_path(mail.outbox[0]))

    # then: the password works and the paid access is theirs
    client.post("/accounts/logout/")
    response = client.post("/accounts/login/", {"username": "vitima@example.com", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/").context["has_access"]


# --- defect 11 ------------------------------------------------------------


def _squatter_signs_up(api_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post(
            "/api/auth/register", {"email": "vitima@example.com", "password": PASSWORD, "name": "Squatter"}, format="json"
        )
    assert response.status_code == 201
    return User.objects.get(email="vitima@example.com")


def test_a_squatter_who_signs_up_with_someones_email_does_not_receive_their_guest_payment(
    api_client, django_capture_on_commit_callbacks
):
    # given: someone signs up first with the victim's e-mail (never confirmed: the link went to the victim)
    squatter = _squatter_signs_up(api_client, django_capture_on_commit_callbacks)
    assert squatter.email_confirmed_at is None

    # when: the victim pays as a guest
    checkout = _guest_checkout(PlanFactory())
    result = activate_checkout(checkout=checkout)

    # then: the money is recorded, unclaimed; the squatter got nothing
    assert result is None
    checkout.refresh_from_db()
    assert checkout.status == Checkout.Status.PAID and checkout.paid_at is not None
    assert checkout.user_id is None and checkout.subscription_id is None
    assert list(Checkout.objects.unclaimed()) == [checkout]
    assert not Subscription.objects.filter(user=squatter).exists()
    assert not user_has_access(User.objects.get(pk=squatter.pk))
    # a duplicate postback changes nothing
    assert activate_checkout(checkout=checkout) is None


def test_the_mailbox_owner_confirming_the_email_claims_the_waiting_payment_from_the_claim_time(
    api_client, client, django_capture_on_commit_callbacks
):
    # given: a squatted e-mail, a guest payment waiting unclaimed since two days ago
    _squatter_signs_up(api_client, django_capture_on_commit_callbacks)
    confirmation = mail.outbox[-1]
    assert confirmation.to == ["vitima@example.com"]
    paid_at = timezone.now() - timedelta(days=2)
    checkout = _guest_checkout(PlanFactory(duration_days=30))
    activate_checkout(checkout=checkout, paid_at=paid_at, now=paid_at)

    # when: the mailbox owner opens the confirmation link
    response = client.get(_link_path(confirmation))

    # then: the account is confirmed and the payment is theirs, a full period from the claim
    assert response.status_code == 302
    user = User.objects.get(email="vitima@example.com")
    assert user.email_confirmed_at is not None
    checkout.refresh_from_db()
    assert checkout.user == user and checkout.paid_at == paid_at and not checkout.is_late
    sub = checkout.subscription
    assert sub.status == Subscription.Status.ACTIVE and sub.user == user
    assert sub.start_date > paid_at and sub.end_date - sub.start_date == timedelta(days=30)
    assert user_has_access(user)
    assert not Checkout.objects.unclaimed().exists()


def test_a_password_set_through_the_reset_link_also_claims_the_waiting_payment(
    api_client, client, django_capture_on_commit_callbacks
):
    # given: a squatted e-mail and a waiting guest payment
    _squatter_signs_up(api_client, django_capture_on_commit_callbacks)
    checkout = _guest_checkout(PlanFactory())
    activate_checkout(checkout=checkout)
    mail.outbox.clear()

    # when: the mailbox owner resets the password through the e-mailed link
    client.post("/accounts/password-reset/", {"email": "vitima@example.com"})
    _set_password_through(client, _link_path(mail.outbox[0]))

    # then: the mailbox is proven, the payment claimed
    checkout.refresh_from_db()
    assert checkout.user.email == "vitima@example.com" and checkout.subscription.status == Subscription.Status.ACTIVE
    assert checkout.user.email_confirmed_at is not None


def test_claiming_twice_grants_the_period_once():
    user = UserFactory(email="vitima@example.com", email_confirmed_at=None)
    checkout = _guest_checkout(PlanFactory(duration_days=30))
    activate_checkout(checkout=checkout)
    now = timezone.now()

    confirm_email(user=user, now=now)
    again = claim_guest_payments(user=user, now=now + timedelta(days=1))

    assert again == []
    sub = Subscription.objects.get(user=user)
    assert (sub.start_date, sub.end_date) == (now, now + timedelta(days=30))


def test_a_refunded_unclaimed_payment_is_never_claimed():
    user = UserFactory(email="vitima@example.com", email_confirmed_at=None)
    checkout = _guest_checkout(PlanFactory())
    activate_checkout(checkout=checkout)
    refund_checkout(checkout=checkout)

    confirm_email(user=user)

    assert not Subscription.objects.filter(user=user).exists()


def test_a_guest_payment_to_a_confirmed_account_gives_access_at_once():
    user = UserFactory(email="vitima@example.com")

    sub = activate_checkout(checkout=_guest_checkout(PlanFactory()))

    assert sub.user == user and sub.status == Subscription.Status.ACTIVE


def test_a_second_guest_payment_goes_at_once_to_the_account_the_first_payment_created():
    # The first payment's account has no usable password: only the mailbox (its set-password link) can log in.
    first = activate_checkout(checkout=_guest_checkout(PlanFactory()))
    assert first.user.email_confirmed_at is None

    second = activate_checkout(checkout=_guest_checkout(PlanFactory()))

    assert second is not None and second.user == first.user


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


def test_the_checkout_admin_lists_unclaimed_paid_checkouts(admin_client):
    UserFactory(email="vitima@example.com", email_confirmed_at=None)
    waiting = _guest_checkout(PlanFactory())
    activate_checkout(checkout=waiting)
    activate_checkout(checkout=_guest_checkout(PlanFactory(), email="outra@example.com"))

    response = admin_client.get("/admin/billing/checkout/?unclaimed=yes")

    assert response.status_code == 200
    assert list(response.context["cl"].queryset) == [waiting]


def test_the_account_page_of_an_unconfirmed_account_does_not_list_guest_payments_of_its_email(client):
    squatter = UserFactory(email="vitima@example.com", email_confirmed_at=None)
    activate_checkout(checkout=_guest_checkout(PlanFactory()))
    client.force_login(squatter)

    response = client.get("/account/")

    assert response.status_code == 200
    assert list(response.context["history"]) == []
