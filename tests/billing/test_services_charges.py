"""
issue_pix_charge's attempts (billing/services/charges.py): recorded before the
gateway is called, the call made outside any row lock, and every later try
looking the charge up by externalRef before it creates one.
"""

import json
import threading
from datetime import timedelta

import pytest
import responses
from django.db import connection, transaction
from django.utils import timezone

from billing.exceptions import ChargeInProgress
from billing.models import ChargeAttempt, Checkout
from billing.services import charges as charges_module
from billing.services import issue_pix_charge
from tests.billing.paymentkit import JP, junglepay, payload
from tests.factories import CheckoutFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def jp(settings):
    settings.JUNGLEPAY_API_URL = JP
    return junglepay()


def answer(checkout, *, transaction_id=282) -> dict:
    data = payload("junglepay_transaction_waiting.json", ref=checkout.public_id, token="t")
    data.update({"id": transaction_id, "amount": checkout.total_cents})
    return data


def _in_another_connection(query):
    """Run `query()` in a thread of its own (its own database connection), and return what it returned."""
    result = []

    def run():
        try:
            result.append(query())
        except Exception as exc:  # noqa: BLE001 - handed back to the test
            result.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=30)
    return result[0]


def _lock_at_once(checkout):
    def lock():
        with transaction.atomic():
            return Checkout.objects.select_for_update(nowait=True).filter(pk=checkout.pk).exists()

    return lock


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@responses.activate
def test_the_attempt_is_committed_before_the_gateway_is_called_and_no_row_lock_is_held_during_the_call(jp):
    # given
    checkout = CheckoutFactory()
    seen = {}

    def create(request):
        # What another process (a retry after this one is killed) sees while the gateway works:
        seen["attempts"] = _in_another_connection(
            lambda: list(ChargeAttempt.objects.filter(checkout_id=checkout.pk).values_list("outcome", flat=True))
        )
        seen["lockable"] = _in_another_connection(_lock_at_once(checkout))
        return 200, {}, json.dumps(answer(checkout))

    responses.add_callback(responses.POST, f"{JP}/transactions", callback=create, content_type="application/json")

    # when
    charged = issue_pix_charge(checkout_id=checkout.public_id)

    # then: the attempt was committed before the call, and the row was free during it
    assert seen["attempts"] == [ChargeAttempt.Outcome.IN_FLIGHT]
    assert seen["lockable"] is True
    assert charged.gateway_transaction_id == "282"
    attempt = checkout.charge_attempts.get()
    assert (attempt.outcome, attempt.transaction_id, attempt.external_ref) == (ChargeAttempt.Outcome.CHARGED, "282", str(checkout.public_id))


@responses.activate
def test_a_try_while_another_is_in_flight_adopts_the_charge_the_gateway_holds_and_never_creates(jp):
    # given: an attempt in flight (a tab still waiting, or a worker killed a moment ago) whose charge exists
    now = timezone.now()
    checkout = CheckoutFactory()
    ChargeAttempt.objects.create(checkout=checkout, gateway=jp, external_ref=str(checkout.public_id), started_at=now - timedelta(seconds=2))
    lookup = responses.get(f"{JP}/transactions", json={"data": [answer(checkout, transaction_id=300)]})
    create = responses.post(f"{JP}/transactions", json=answer(checkout, transaction_id=301))

    # when
    charged = issue_pix_charge(checkout_id=checkout.public_id, now=now)

    # then
    assert charged.gateway_transaction_id == "300"
    assert lookup.call_count == 1 and create.call_count == 0


@responses.activate
def test_a_try_while_another_is_in_flight_and_nothing_is_at_the_gateway_yet_says_try_again(jp, monkeypatch):
    monkeypatch.setattr(charges_module, "LOCK_WAIT_SECONDS", 0.2)
    now = timezone.now()
    checkout = CheckoutFactory()
    ChargeAttempt.objects.create(checkout=checkout, gateway=jp, external_ref=str(checkout.public_id), started_at=now - timedelta(seconds=2))
    responses.get(f"{JP}/transactions", json={"data": []})
    create = responses.post(f"{JP}/transactions", json=answer(checkout))

    with pytest.raises(ChargeInProgress):
        issue_pix_charge(checkout_id=checkout.public_id, now=now)

    assert create.call_count == 0


@responses.activate
def test_an_attempt_older_than_the_budget_is_abandoned_and_the_next_looks_before_creating(jp):
    # given: an attempt whose process died (still in flight after the budget), and no charge at the gateway
    now = timezone.now()
    checkout = CheckoutFactory()
    dead = ChargeAttempt.objects.create(
        checkout=checkout, gateway=jp, external_ref=str(checkout.public_id),
        started_at=now - charges_module.in_flight_window() - timedelta(seconds=1),
    )
    lookup = responses.get(f"{JP}/transactions", json={"data": []})
    create = responses.post(f"{JP}/transactions", json=answer(checkout))

    # when
    charged = issue_pix_charge(checkout_id=checkout.public_id, now=now)

    # then: looked up first, then created once; the dead attempt is marked as such
    assert [call.request.method for call in responses.calls] == ["GET", "POST"]
    assert lookup.call_count == 1 and create.call_count == 1
    assert charged.gateway_transaction_id == "282"
    dead.refresh_from_db()
    assert dead.outcome == ChargeAttempt.Outcome.ABANDONED
    assert checkout.charge_attempts.filter(outcome=ChargeAttempt.Outcome.CHARGED).count() == 1


@responses.activate
def test_a_first_try_creates_without_a_lookup(jp):
    checkout = CheckoutFactory()
    create = responses.post(f"{JP}/transactions", json=answer(checkout))

    issue_pix_charge(checkout_id=checkout.public_id)

    assert [call.request.method for call in responses.calls] == ["POST"]
    assert create.call_count == 1
