import pytest
from django.db import connection


@pytest.mark.django_db
def test_healthz_is_ok(client, settings):
    response = client.get("/healthz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == "ok"
    assert body["cache"] == ("ok" if settings.REDIS_URL else "n/a")


@pytest.mark.django_db
def test_healthz_answers_503_naming_the_database_when_it_is_unreachable(client, monkeypatch):
    def broken_cursor(*args, **kwargs):
        from django.db.utils import OperationalError

        raise OperationalError("connection refused")

    monkeypatch.setattr(connection, "cursor", broken_cursor)

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["database"] == "down"
    assert "database" in response.json()["failing"]


@pytest.fixture
def redis_down(settings):
    """The production cache configuration, pointed at a port where nothing listens.
    (Django resets its cache handlers when the CACHES setting changes.)"""
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": settings.REDIS_URL,
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2, "IGNORE_EXCEPTIONS": True},
        }
    }


@pytest.mark.django_db
def test_healthz_answers_503_when_the_cache_is_down(client, redis_down):
    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["cache"] == "down"


@pytest.mark.django_db
def test_the_api_keeps_serving_when_redis_is_down(api_client, redis_down, user):
    """Throttles and the login-failure counter live in the cache: an outage must not fail logins."""
    response = api_client.post("/api/auth/login", {"email": user.email, "password": "correct-horse-battery"}, format="json")

    assert response.status_code == 200
    assert api_client.get("/healthz").json()["cache"] == "down"
