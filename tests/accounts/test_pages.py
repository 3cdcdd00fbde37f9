import pytest
from django.core import mail

pytestmark = pytest.mark.django_db


def test_signup_page_creates_an_account_and_logs_in(client):
    response = client.post(
        "/accounts/signup/",
        {"name": "Caio", "email": "caio@example.com", "password1": "s3nha-bem-forte!", "password2": "s3nha-bem-forte!"},
    )

    assert response.status_code == 302
    assert client.get("/cookies/").context["user"].email == "caio@example.com"


def test_signup_page_shows_field_errors(client, user):
    response = client.post("/accounts/signup/", {"name": "X", "email": user.email, "password1": "a", "password2": "b"})

    assert response.status_code == 200
    assert response.context["form"].errors["email"]


def test_login_page_logs_in_and_logout_logs_out(client, user):
    response = client.post("/accounts/login/", {"username": user.email, "password": "correct-horse-battery"})
    assert response.status_code == 302

    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert not client.get("/cookies/").context["user"].is_authenticated


def test_login_page_is_throttled(client, user, settings):
    settings.LOGIN_THROTTLE_ATTEMPTS = 2
    for _ in range(2):
        client.post("/accounts/login/", {"username": user.email, "password": "bad"})

    response = client.post("/accounts/login/", {"username": user.email, "password": "correct-horse-battery"})

    assert response.status_code == 200
    assert "Too many failed attempts" in str(response.context["form"].non_field_errors()) or "Muitas tentativas" in str(
        response.context["form"].non_field_errors()
    )


def test_password_reset_sends_a_link(client, user):
    response = client.post("/accounts/password-reset/", {"email": user.email})

    assert response.status_code == 302
    assert len(mail.outbox) == 1
    assert "/accounts/reset/" in mail.outbox[0].body


def test_pages_are_in_portuguese_by_default_and_english_on_request(client):
    assert "Entrar" in client.get("/accounts/login/").content.decode()
    assert "Log in" in client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="en").content.decode()


def test_signup_page_is_rate_limited_per_ip(client, settings):
    settings.SIGNUP_RATE_LIMIT = 2
    for i in range(2):
        client.post("/accounts/signup/", {"name": "X", "email": f"s{i}@example.com", "password1": "s3nha-bem-forte!", "password2": "s3nha-bem-forte!"})
        client.post("/accounts/logout/")

    response = client.post(
        "/accounts/signup/", {"name": "X", "email": "s9@example.com", "password1": "s3nha-bem-forte!", "password2": "s3nha-bem-forte!"}
    )

    assert response.status_code == 429
    from django.contrib.auth import get_user_model

    assert not get_user_model().objects.filter(email="s9@example.com").exists()


def test_admin_login_is_throttled_after_failed_attempts(client, superuser, settings):
    settings.LOGIN_THROTTLE_ATTEMPTS = 3
    for _ in range(3):
        client.post("/admin/login/", {"username": superuser.email, "password": "wrong"})

    response = client.post("/admin/login/?next=/admin/", {"username": superuser.email, "password": "correct-horse-battery"})

    assert response.status_code == 200  # the form again, not the redirect into the admin
    assert not response.wsgi_request.user.is_authenticated
    assert client.get("/admin/").status_code == 302


def test_admin_login_works_for_staff(client, superuser):
    response = client.post("/admin/login/?next=/admin/", {"username": superuser.email, "password": "correct-horse-battery"})

    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200
