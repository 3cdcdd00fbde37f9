import pytest
from django.db import OperationalError
from django.db.backends.base.base import BaseDatabaseWrapper

pytestmark = pytest.mark.django_db


def test_pages_carry_the_security_headers(client):
    response = client.get("/accounts/login/", secure=True)

    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert response["X-Frame-Options"] == "DENY"
    assert "max-age=31536000" in response["Strict-Transport-Security"]
    csp = response["Content-Security-Policy"]
    assert "default-src 'self'" in csp
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    assert "frame-ancestors 'none'" in csp


def test_the_api_docs_load_nothing_from_a_cdn(client):
    response = client.get("/api/docs/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "cdn.jsdelivr" not in html and "unpkg.com" not in html


def test_session_authenticated_api_writes_need_the_csrf_token(user):
    from rest_framework.test import APIClient

    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)

    response = client.post("/api/auth/logout")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


def _database_goes_away(monkeypatch):
    def refuse(self):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(BaseDatabaseWrapper, "ensure_connection", refuse)


def test_a_database_outage_is_a_clear_503_on_the_api(api_client, monkeypatch):
    _database_goes_away(monkeypatch)

    response = api_client.post("/api/auth/login", {"email": "a@example.com", "password": "x"}, format="json")

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "service_unavailable"
    assert response["Retry-After"] == "5"
    assert "Traceback" not in response.content.decode()


def test_a_database_outage_is_a_clear_503_on_pages(client, monkeypatch):
    client.raise_request_exception = False
    _database_goes_away(monkeypatch)

    response = client.post("/accounts/login/", {"username": "a@example.com", "password": "x"})

    assert response.status_code == 503
    assert "Traceback" not in response.content.decode()


def test_unknown_api_paths_answer_in_the_error_shape(client):
    response = client.get("/api/does-not-exist")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
