"""
billing.services.guest_claims: a guest payment (our checkout or the marketplace's)
goes only to an account whose owner proved the mailbox (contract §3); it waits
unclaimed until then, and confirming the e-mail (or setting a password through
the reset link) claims it, the period starting at the claim. An account created
by a payment can always get a password.
"""

import re
from datetime import date, timedelta

import pytest
from django.core import mail
from django.utils import timezone

from accounts.models import User
from accounts.services import confirm_email
from billing.access import user_has_access
from billing.gateways import ChargeStatus
from billing.models import (
    Checkout,
    Subscription,
    UnclaimedMarketplacePayment,
    WebhookEvent,
)
from billing.services import activate_checkout, claim_guest_payments, create_checkout, record_marketplace_payment, refund_checkout
from tests.billing.paymentkit import dias, payload, post_webhook
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


def _squatter_signs_up(api_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post(
            "/api/auth/register", {"email": "vitima@example.com", "password": PASSWORD, "name": "Squatter"}, format="json"
        )
    assert response.status_code == 201
    return User.objects.get(email="vitima@example.com")


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


EMAIL = "carla@example.com"  # the payer of the recorded Dias payloads


def _squatter_signs_up_with_the_payers_email(api_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post("/api/auth/register", {"email": EMAIL, "password": PASSWORD, "name": "Squatter"}, format="json")
    assert response.status_code == 201
    return User.objects.get(email=EMAIL)


def _deliver_dias(client, gateway, name, path="payment-sucess"):
    return post_webhook(client, f"dias/{path}", payload(name), token=gateway.postback_token)


def test_a_marketplace_payment_to_a_squatted_email_waits_until_the_mailbox_owner_confirms(
    api_client, client, django_capture_on_commit_callbacks
):
    # given: a squatter signed up with the payer's e-mail (unconfirmed: the link went to the payer)
    gateway = dias()
    PlanFactory(price_cents=2990, duration_days=30)
    squatter = _squatter_signs_up_with_the_payers_email(api_client, django_capture_on_commit_callbacks)
    confirmation = mail.outbox[-1]

    # when: the payer pays on the marketplace (PENDING, then PAID, then a re-delivery)
    assert _deliver_dias(client, gateway, "dias_pending.json", path="payment-success").status_code == 200
    assert _deliver_dias(client, gateway, "dias_paid.json").status_code == 200
    assert _deliver_dias(client, gateway, "dias_paid.json").status_code == 200

    # then: the money is kept, unclaimed; the squatter has neither a subscription nor access
    assert not Subscription.objects.filter(user=squatter).exists()
    assert not user_has_access(User.objects.get(pk=squatter.pk))
    waiting = UnclaimedMarketplacePayment.objects.get()
    assert (waiting.external_id, waiting.email, waiting.paid_amount_cents) == ("DM-2026-000123", EMAIL, 2990)
    assert waiting.claimed_at is None
    assert not WebhookEvent.objects.filter(outcome=WebhookEvent.Outcome.FAILED).exists()

    # when: the mailbox owner opens the confirmation link
    before = timezone.now()
    assert client.get(_link_path(confirmation)).status_code == 302

    # then: the payment is theirs, a full period from the claim
    owner = User.objects.get(email=EMAIL)
    subscription = Subscription.objects.get(external_id="DM-2026-000123")
    assert subscription.user == owner and subscription.status == Subscription.Status.ACTIVE
    assert subscription.start_date >= before and subscription.end_date - subscription.start_date == timedelta(days=30)
    # The subscription grants access; the account still confirms its age at its next visit (test_rights_age.py).
    assert Subscription.objects.granting_access(timezone.now()).filter(user=owner).exists()
    waiting.refresh_from_db()
    assert waiting.claimed_at is not None and waiting.subscription == subscription


def test_a_password_set_through_the_reset_link_claims_the_waiting_marketplace_payment(
    api_client, client, django_capture_on_commit_callbacks
):
    # given: a squatted e-mail and a marketplace payment waiting for it
    gateway = dias()
    PlanFactory(price_cents=2990, duration_days=30)
    _squatter_signs_up_with_the_payers_email(api_client, django_capture_on_commit_callbacks)
    _deliver_dias(client, gateway, "dias_paid.json")
    assert not Subscription.objects.exists()
    mail.outbox.clear()

    # when: the mailbox owner resets the password through the e-mailed link
    client.post("/accounts/password-reset/", {"email": EMAIL})
    response = client.get(_link_path(mail.outbox[0]), follow=True)
    set_url = response.redirect_chain[-1][0] if response.redirect_chain else _link_path(mail.outbox[0])
    assert client.post(set_url, {"new_password1": PASSWORD, "new_password2": PASSWORD}).status_code == 302

    # then: access from then
    owner = User.objects.get(email=EMAIL)
    assert owner.email_confirmed_at is not None
    assert Subscription.objects.get(external_id="DM-2026-000123").user == owner
    assert Subscription.objects.granting_access(timezone.now()).filter(user=owner).exists()


def test_claiming_a_marketplace_payment_twice_grants_the_period_once():
    # given: a waiting marketplace payment
    dias()
    PlanFactory(price_cents=2990, duration_days=30)
    user = UserFactory(email=EMAIL, email_confirmed_at=None)
    paid_on = timezone.now() - timedelta(days=2)
    assert record_marketplace_payment(external_id="DM-1", status=ChargeStatus.PAID, amount_cents=2990, email=EMAIL, now=paid_on) is None
    now = timezone.now()

    # when: confirmed, then confirmed again a day later, and the PAID re-delivered
    confirm_email(user=user, now=now)
    confirm_email(user=user, now=now + timedelta(days=1))
    record_marketplace_payment(external_id="DM-1", status=ChargeStatus.PAID, amount_cents=2990, email=EMAIL, now=now + timedelta(days=1))

    # then: one period, from the first claim
    subscription = Subscription.objects.get(user=user)
    assert (subscription.start_date, subscription.end_date) == (now, now + timedelta(days=30))


def test_the_admin_lists_unclaimed_marketplace_payments(admin_client):
    dias()
    PlanFactory(price_cents=2990)
    UserFactory(email=EMAIL, email_confirmed_at=None)
    record_marketplace_payment(external_id="DM-1", status=ChargeStatus.PAID, amount_cents=2990, email=EMAIL)

    response = admin_client.get("/admin/billing/unclaimedmarketplacepayment/?claimed_at__isempty=1")

    assert response.status_code == 200
    assert [p.external_id for p in response.context["cl"].queryset] == ["DM-1"]
