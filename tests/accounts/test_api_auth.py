import pytest
from django.contrib.auth import get_user_model

pytestmark = pytest.mark.django_db

REGISTER = "/api/auth/register"
LOGIN = "/api/auth/login"
LOGOUT = "/api/auth/logout"


def test_register_creates_the_user_and_logs_them_in(api_client):
    response = api_client.post(REGISTER, {"email": "Ana@Example.com", "password": "s3nha-bem-forte!", "name": "Ana"}, format="json")

    assert response.status_code == 201
    body = response.json()
    assert body["email"] == "ana@example.com"
    assert body["name"] == "Ana"
    assert set(body) == {"id", "email", "name"}
    assert "sessionid" in response.cookies
    assert get_user_model().objects.get(email="ana@example.com").check_password("s3nha-bem-forte!")


def test_register_rejects_a_duplicate_email_case_insensitively(api_client, user):
    response = api_client.post(REGISTER, {"email": user.email.upper(), "password": "s3nha-bem-forte!"}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "email_taken"
    assert "email" in response.json()["error"]["fields"]


@pytest.mark.parametrize("password", ["123", "password", "12345678901"])
def test_register_rejects_a_weak_password(api_client, password):
    response = api_client.post(REGISTER, {"email": "bia@example.com", "password": password}, format="json")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "weak_password"
    assert error["fields"]["password"]
    assert not get_user_model().objects.filter(email="bia@example.com").exists()


def test_register_rejects_a_malformed_email(api_client):
    response = api_client.post(REGISTER, {"email": "not-an-email", "password": "s3nha-bem-forte!"}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert "email" in response.json()["error"]["fields"]


def test_login_with_the_right_password(api_client, user):
    response = api_client.post(LOGIN, {"email": user.email, "password": "correct-horse-battery"}, format="json")

    assert response.status_code == 200
    assert response.json() == {"id": user.pk, "email": user.email, "name": user.name, "has_access": False}
    assert "sessionid" in response.cookies


def test_login_with_a_wrong_password_is_a_400(api_client, user):
    response = api_client.post(LOGIN, {"email": user.email, "password": "nope"}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_credentials"


def test_wrong_passwords_answer_the_same_for_known_and_unknown_emails(api_client, user, settings):
    settings.LOGIN_THROTTLE_ATTEMPTS = 100
    known = [api_client.post(LOGIN, {"email": user.email, "password": f"x{i}"}, format="json").json() for i in range(10)]
    unknown = [api_client.post(LOGIN, {"email": "ghost@example.com", "password": f"x{i}"}, format="json").json() for i in range(10)]

    assert known == unknown


def test_login_is_throttled_per_email_after_repeated_failures(api_client, user, settings):
    settings.LOGIN_THROTTLE_ATTEMPTS = 5
    for i in range(5):
        assert api_client.post(LOGIN, {"email": user.email, "password": f"bad{i}"}, format="json").status_code == 400

    # Even the right password is refused while throttled, from another IP too.
    response = api_client.post(
        LOGIN, {"email": user.email, "password": "correct-horse-battery"}, format="json", REMOTE_ADDR="10.9.9.9"
    )

    assert response.status_code == 429
    assert response.json()["error"]["code"] == "throttled"


def test_login_throttle_for_an_unknown_email_looks_the_same(api_client, settings):
    settings.LOGIN_THROTTLE_ATTEMPTS = 3
    for i in range(3):
        api_client.post(LOGIN, {"email": "ghost@example.com", "password": f"bad{i}"}, format="json")

    response = api_client.post(LOGIN, {"email": "ghost@example.com", "password": "whatever"}, format="json")

    assert response.status_code == 429


def test_auth_endpoints_are_rate_limited_per_ip(api_client, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "auth": "3/min"}}
    codes = [
        api_client.post(REGISTER, {"email": f"r{i}@example.com", "password": "s3nha-bem-forte!"}, format="json").status_code
        for i in range(4)
    ]

    assert codes == [201, 201, 201, 429]


def test_logout_ends_the_session(api_client, user):
    api_client.force_login(user)

    response = api_client.post(LOGOUT)

    assert response.status_code == 204
    assert api_client.post(LOGOUT).status_code == 403


def test_api_errors_never_carry_a_stack_trace(api_client):
    response = api_client.post(LOGIN, data="{not json", content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"
    assert "Traceback" not in response.content.decode()


# Login CSRF: a page on another site must not sign the visitor's browser into the attacker's account
# (the victim would then pay, or leave their data, in it). Login and register take Django's CSRF token
# like every session-authenticated write; a client gets it with any GET of the API (e.g. /api/plans).


def _browser_with_csrf_cookie():
    from rest_framework.test import APIClient

    browser = APIClient(enforce_csrf_checks=True)
    assert browser.get("/api/plans").status_code == 200
    return browser, browser.cookies["csrftoken"].value


@pytest.mark.parametrize("path", [LOGIN, REGISTER])
def test_login_and_register_without_the_csrf_token_sign_no_one_in(path, user):
    from rest_framework.test import APIClient

    # given: the victim's browser; a page elsewhere posts the attacker's credentials to our API
    victim = APIClient(enforce_csrf_checks=True)
    body = {"email": user.email if path == LOGIN else "attacker@example.com", "password": "correct-horse-battery"}

    response = victim.post(path, body, format="json")

    # then: refused, and the browser holds no session
    assert response.status_code == 403 and response.json()["error"]["code"] == "permission_denied"
    assert "sessionid" not in response.cookies
    assert not get_user_model().objects.filter(email="attacker@example.com").exists()


def test_login_with_the_csrf_token_signs_in(user):
    browser, token = _browser_with_csrf_cookie()

    response = browser.post(LOGIN, {"email": user.email, "password": "correct-horse-battery"}, format="json", HTTP_X_CSRFTOKEN=token)

    assert response.status_code == 200 and "sessionid" in response.cookies


def test_register_with_the_csrf_token_signs_in():
    browser, token = _browser_with_csrf_cookie()

    response = browser.post(
        REGISTER, {"email": "nova@example.com", "password": "s3nha-bem-forte!"}, format="json", HTTP_X_CSRFTOKEN=token
    )

    assert response.status_code == 201 and "sessionid" in response.cookies
