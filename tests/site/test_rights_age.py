"""Age assurance (contract §2 MIN_AGE / AGE_VERIFICATION, §3 birth_date, §4 the 18+ gate, §8 confirmed age)."""

from datetime import date, timedelta

import pytest
from django.core.checks import run_checks
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import AgeVerification, User
from billing.access import user_has_access
from billing.models import Checkout, Subscription
from tests.billing.paymentkit import sandbox
from tests.factories import PlanFactory, SubscriptionFactory, UserFactory

pytestmark = pytest.mark.django_db

ADULT = "1990-05-17"


def _under_age_birth_date() -> str:
    """A birth date one day short of MIN_AGE (18) today, whatever today is."""
    today = timezone.localdate()
    try:
        eighteenth = today.replace(year=today.year - 18)
    except ValueError:  # 29 February
        eighteenth = today.replace(year=today.year - 18, day=28)
    return (eighteenth + timedelta(days=1)).isoformat()


def test_sign_up_under_min_age_is_refused_naming_birth_date():
    response = APIClient().post(
        "/api/auth/register", {"email": "teen@example.com", "password": "s3nha-forte-123", "birth_date": _under_age_birth_date()}, format="json"
    )

    assert response.status_code == 400
    assert "birth_date" in response.json()["error"]["fields"]
    assert not User.objects.filter(email="teen@example.com").exists()


def test_sign_up_with_an_adult_birth_date_confirms_the_age_by_declaration():
    response = APIClient().post(
        "/api/auth/register", {"email": "adulta@example.com", "password": "s3nha-forte-123", "birth_date": ADULT}, format="json"
    )

    assert response.status_code == 201, response.content
    user = User.objects.get(email="adulta@example.com")
    assert user.birth_date == date(1990, 5, 17) and user.age_confirmed_at and user.age_confirmed_by == "declaration"


def test_the_sign_up_form_refuses_an_under_age_birth_date(client):
    response = client.post(
        "/accounts/signup/",
        {"name": "Teen", "email": "teen@example.com", "password1": "s3nha-forte-123", "password2": "s3nha-forte-123", "birth_date": _under_age_birth_date()},
    )

    assert response.status_code == 200 and response.context["form"].errors["birth_date"]
    assert not User.objects.filter(email="teen@example.com").exists()


@pytest.mark.parametrize("birth_date", [None, "under"])
def test_checkout_without_an_adult_birth_date_is_refused_naming_birth_date(settings, birth_date):
    settings.DEBUG, settings.SANDBOX_GATEWAY_ALLOWED = False, True
    sandbox()
    body = {"plan_id": PlanFactory().pk, "payment_method": "pix", "name": "Ana Souza", "email": "ana@example.com", "cpf": "529.982.247-25", "phone": "(11) 98765-4321"}
    if birth_date:
        body["birth_date"] = _under_age_birth_date()

    response = APIClient().post("/api/checkout/process", body, format="json")

    assert response.status_code == 400
    assert "birth_date" in response.json()["error"]["fields"]
    assert not Checkout.objects.exists()


def test_an_account_from_before_age_assurance_keeps_its_subscription_and_is_asked_its_birth_date(client, make_creator):
    user = UserFactory(birth_date=None, age_confirmed_at=None, age_confirmed_by="")
    subscription = SubscriptionFactory(user=user)
    creator = make_creator(slug="luna")
    client.force_login(user)
    assert not user_has_access(user)  # contract §8: no locked content without a confirmed age

    response = client.get("/models/luna/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/age/")
    assert client.get(response["Location"]).status_code == 200

    response = client.post("/accounts/age/", {"birth_date": ADULT, "next": f"/models/{creator.slug}/"})

    assert response.status_code == 302 and response["Location"] == "/models/luna/"
    user.refresh_from_db()
    assert user_has_access(user)
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.ACTIVE  # the subscription was never touched
    assert client.get("/models/luna/").status_code == 200


def test_visitors_and_search_engines_see_the_18_gate_before_a_creator_page_until_they_confirm(client, make_creator):
    make_creator(slug="luna")

    first = client.get("/models/luna/")
    robot = client.get("/models/luna/", HTTP_USER_AGENT="Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)")

    for response in (first, robot):
        assert 'data-testid="age-gate"' in response.content.decode()
        assert response["X-Robots-Tag"] == "noindex"
    confirmed = client.post("/accounts/age/gate/", {"next": "/models/luna/"})
    assert confirmed["Location"] == "/models/luna/"
    assert 'data-testid="age-gate"' not in client.get("/models/luna/").content.decode()  # remembered for the session
    assert client.post("/accounts/age/gate/", {"next": "https://evil.example/"})["Location"] == "/"


def test_the_sandbox_provider_fails_then_passes_on_demand_storing_only_its_reference(client, settings):
    settings.AGE_VERIFICATION = "sandbox"
    settings.SANDBOX_GATEWAY_ALLOWED = True
    user = UserFactory(birth_date=None, age_confirmed_at=None, age_confirmed_by="")
    SubscriptionFactory(user=user)
    client.force_login(user)

    started = client.post("/accounts/age/", {"birth_date": ADULT, "next": "/account/"})
    user.refresh_from_db()
    assert user.birth_date == date(1990, 5, 17) and user.age_confirmed_at is None  # a declaration is not enough here
    verification = AgeVerification.objects.get(user=user)
    assert started["Location"] == f"/accounts/age/sandbox/{verification.reference}/"
    assert client.get(started["Location"]).status_code == 200

    client.post("/accounts/age/callback/sandbox/", {"reference": verification.reference, "result": "fail"})
    verification.refresh_from_db()
    user.refresh_from_db()
    assert verification.status == "failed" and not user_has_access(user)

    again = client.post("/accounts/age/", {"next": "/account/"})
    second = AgeVerification.objects.exclude(pk=verification.pk).get()
    assert again["Location"] == f"/accounts/age/sandbox/{second.reference}/"
    done = client.post("/accounts/age/callback/sandbox/", {"reference": second.reference, "result": "pass"})

    assert done["Location"] == "/account/"
    user.refresh_from_db()
    assert user.age_confirmed_by == "sandbox" and user_has_access(user)
    second.refresh_from_db()
    assert second.status == "passed" and second.finished_at
    assert {f.name for f in AgeVerification._meta.get_fields()} == {
        "id", "user", "provider", "reference", "provider_reference", "status", "started_at", "finished_at"
    }  # the outcome and references only: never a document or a selfie


def test_an_unknown_age_verification_policy_fails_the_system_check(settings):
    settings.AGE_VERIFICATION = "nobody"
    assert "accounts.E002" in [message.id for message in run_checks()]


def test_the_sandbox_age_provider_is_refused_where_sandboxes_are_not_allowed(client, settings):
    # given: a production-like site (DEBUG off, no sandbox allowance) configured with the sandbox provider
    settings.AGE_VERIFICATION = "sandbox"
    settings.DEBUG = False
    settings.SANDBOX_GATEWAY_ALLOWED = False
    assert "accounts.E003" in [message.id for message in run_checks()]

    # when: someone starts a verification and posts the sandbox's "pass" anyway
    user = UserFactory(birth_date=None, age_confirmed_at=None, age_confirmed_by="")
    client.force_login(user)
    client.post("/accounts/age/", {"birth_date": ADULT, "next": "/account/"})
    verification = AgeVerification.objects.get(user=user)
    page = client.get(f"/accounts/age/sandbox/{verification.reference}/")
    passed = client.post("/accounts/age/callback/sandbox/", {"reference": verification.reference, "result": "pass"})

    # then: neither the page nor the callback exists, and the age stays unconfirmed
    assert page.status_code == 404 and passed.status_code == 404
    user.refresh_from_db()
    assert user.age_confirmed_at is None
    settings.SANDBOX_GATEWAY_ALLOWED = True
    assert "accounts.E003" not in [message.id for message in run_checks()]


def test_the_age_callback_never_finishes_another_users_verification(client, settings):
    # given: Ana started a verification; Bruno, logged in, learns its reference
    settings.AGE_VERIFICATION = "sandbox"
    settings.SANDBOX_GATEWAY_ALLOWED = True
    ana = UserFactory(birth_date=None, age_confirmed_at=None, age_confirmed_by="")
    client.force_login(ana)
    client.post("/accounts/age/", {"birth_date": ADULT, "next": "/account/"})
    verification = AgeVerification.objects.get(user=ana)
    client.force_login(UserFactory())

    # when: Bruno posts the callback with Ana's reference
    answer = client.post("/accounts/age/callback/sandbox/", {"reference": verification.reference, "result": "pass"})

    # then: not found, and Ana's verification is untouched (still pending, her age unconfirmed)
    assert answer.status_code == 404
    verification.refresh_from_db()
    ana.refresh_from_db()
    assert verification.status == "pending" and verification.finished_at is None and ana.age_confirmed_at is None
