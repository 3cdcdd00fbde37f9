"""Sentry (config/sentry.py): an error in a request reaches Sentry with nothing personal in it. No network:
the SDK's transport is replaced by one that keeps the envelopes."""

import json
import logging

import pytest
import sentry_sdk
from django.core.handlers.wsgi import WSGIHandler
from django.test import RequestFactory
from django.urls import path
from sentry_sdk.transport import Transport

from config.sentry import FILTERED, init_sentry, scrub_event

CPF = "529.982.247-25"
EMAIL = "maria.silva@example.com"
PHONE = "(11) 98765-4321"
CARD = "4111 1111 1111 1111"
TOKEN = "pbk_7f3a9c2e5b1d4f6a8c0e2b4d"


def _boom(request):
    raise RuntimeError(f"gateway refused card {CARD} for {EMAIL} (CPF {CPF}, phone {PHONE}), postback /api/webhook/junglepay?token={TOKEN}")


urlpatterns = [path("boom", _boom, name="boom")]


class KeepingTransport(Transport):
    def __init__(self, options=None):
        super().__init__(options)
        self.events = []

    def capture_envelope(self, envelope):
        for item in envelope.items:
            if item.type in ("event", "transaction"):
                self.events.append(json.loads(item.payload.get_bytes()))


def wsgi_get(path, query=None, **headers) -> str:
    """A request through Django's WSGI handler, as gunicorn makes it (the test client skips the WSGI layer Sentry hooks)."""
    statuses = []
    WSGIHandler()(RequestFactory().get(path, query, **headers).environ, lambda status, headers, *args: statuses.append(status))
    return statuses[0]


@pytest.fixture
def start_sentry():
    def start(traces_sample_rate=0.0):
        transport = KeepingTransport()
        init_sentry(
            dsn="https://public@sentry.example.invalid/1",
            environment="rehearsal",
            release="creatorflix@test",
            traces_sample_rate=traces_sample_rate,
            transport=transport,
        )
        return transport.events

    yield start
    sentry_sdk.get_client().close()
    sentry_sdk.init()  # back to a disabled client for the rest of the run


@pytest.fixture
def sentry_events(start_sentry):
    return start_sentry()


@pytest.mark.django_db
@pytest.mark.urls("tests.config.test_sentry")
def test_an_error_in_a_request_reaches_sentry_with_no_personal_data_or_secret(sentry_events):
    # when: a request through Django's WSGI handler, as gunicorn makes it
    status = wsgi_get(
        "/boom",
        {"token": TOKEN, "email": EMAIL},
        HTTP_AUTHORIZATION=f"Bearer {TOKEN}",
        HTTP_COOKIE=f"sessionid=abc123; cpf={CPF}",
        HTTP_X_PHONE=PHONE,
    )
    assert status.startswith("500")
    sentry_sdk.flush()

    # then
    [event] = sentry_events
    assert event["environment"] == "rehearsal"
    assert event["release"] == "creatorflix@test"
    assert event["exception"]["values"][0]["type"] == "RuntimeError"
    assert event["request"]["url"].endswith("/boom")
    text = json.dumps(event)
    for secret in (CPF, "52998224725", EMAIL, PHONE, "98765-4321", CARD, "4111111111111111", TOKEN, "abc123"):
        assert secret not in text
    assert FILTERED in event["exception"]["values"][0]["value"]
    assert "user" not in event


def test_a_logged_error_is_scrubbed_too(sentry_events):
    logging.getLogger("billing.test").error("refund failed for %s, card %s", EMAIL, "4111-1111-1111-1111")
    sentry_sdk.flush()

    [event] = sentry_events
    assert EMAIL not in json.dumps(event)
    assert "4111-1111-1111-1111" not in json.dumps(event)


def test_scrub_masks_personal_keys_wherever_they_are_and_keeps_code():
    event = {
        "extra": {"customer": {"cpf": "52998224725", "name_len": 5}, "card_hash": "abc", "note": f"token={TOKEN}"},
        "request": {"headers": {"Authorization": "Basic dXNlcjpwYXNz", "X-Request-ID": "r-1"}, "query_string": f"token={TOKEN}"},
        "exception": {"values": [{"type": "ValueError", "value": "x", "stacktrace": {"frames": [{"function": "charge_card", "vars": {"cpf": CPF}}]}}]},
    }

    scrubbed = scrub_event(event)

    assert scrubbed["extra"]["customer"] == {"cpf": FILTERED, "name_len": 5}
    assert scrubbed["extra"]["card_hash"] == FILTERED
    assert TOKEN not in scrubbed["extra"]["note"]
    assert scrubbed["request"]["headers"] == {"Authorization": FILTERED, "X-Request-ID": "r-1"}
    assert scrubbed["request"]["query_string"] == f"token={FILTERED}"
    assert scrubbed["exception"]["values"][0]["stacktrace"]["frames"] == [{"function": "charge_card"}]


@pytest.mark.django_db
@pytest.mark.parametrize(("rate", "transactions"), [(0.0, 0), (1.0, 1)])
def test_traces_are_sampled_at_the_configured_rate(start_sentry, rate, transactions):
    events = start_sentry(traces_sample_rate=rate)

    wsgi_get("/healthz", {"token": TOKEN})
    sentry_sdk.flush()

    traced = [event for event in events if event.get("type") == "transaction"]
    assert len(traced) == transactions
    assert TOKEN not in json.dumps(traced)
