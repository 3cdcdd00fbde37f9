"""
Hostile input against every operation of our own OpenAPI schema (/api/schema/):
schemathesis generates valid and invalid requests; none may answer 5xx, and
every error must come in the contract's shape {"error": {"code", "message", "fields"}}.
Bounded and derandomized, so CI is repeatable.
"""

import json

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

schema = schemathesis.openapi.from_wsgi("/api/schema/", WSGIHandler())

FUZZ = hypothesis_settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)


@schemathesis.check
def error_shape(ctx, response, case):
    if response.status_code < 400:
        return None
    try:
        body = json.loads(response.content)
    except ValueError as exc:
        raise AssertionError(f"{response.status_code} answered without a JSON body") from exc
    error = body.get("error") if isinstance(body, dict) else None
    assert isinstance(error, dict), f"{response.status_code} without the 'error' object: {body!r}"
    assert isinstance(error.get("code"), str) and error["code"], body
    assert isinstance(error.get("message"), str), body
    assert isinstance(error.get("fields"), dict), body
    return None


@pytest.fixture
def in_test_transaction():
    # Requests run in-process inside the test's transaction; Django must not close the
    # connection at the end of each one (its own test client does the same).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def generous_throttles(settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {scope: "100000/min" for scope in settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]},
    }


@pytest.fixture
def session_headers(db):
    """Cookies and CSRF header of a logged-in user, so authenticated operations are reached too."""
    from django.middleware.csrf import _get_new_csrf_string
    from django.test import Client

    from tests.factories import UserFactory

    client = Client()
    client.force_login(UserFactory())
    csrf = _get_new_csrf_string()
    return {"Cookie": f"sessionid={client.cookies['sessionid'].value}; csrftoken={csrf}", "X-CSRFToken": csrf}


@pytest.mark.django_db
@schema.parametrize()
@FUZZ
def test_anonymous_requests_never_crash(case, in_test_transaction, generous_throttles):
    case.call_and_validate(checks=[schemathesis.checks.not_a_server_error, error_shape])


@pytest.mark.django_db
@schema.parametrize()
@FUZZ
def test_logged_in_requests_never_crash(case, in_test_transaction, generous_throttles, session_headers):
    case.call_and_validate(headers=session_headers, checks=[schemathesis.checks.not_a_server_error, error_shape])
