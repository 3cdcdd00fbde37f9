"""
issue_pix_charge's attempts (billing/services/charges.py): recorded before the
gateway is called, the call made outside any row lock, and every later try
looking the charge up by externalRef before it creates one.
"""

import json
import re
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
import requests
import responses
from django.db import connection, transaction
from django.utils import timezone

from billing.exceptions import ChargeInProgress, CustomerDetailsRequired, GatewayUnavailable
from billing.models import (
    ChargeAttempt,
    Checkout,
    CheckoutCharge,
    Subscription,
    WebhookEvent,
)
from billing.services import charges as charges_module
from billing.services import (
    create_checkout,
    issue_pix_charge,
    sweep_subscriptions,
)
from tests.billing.paymentkit import (
    JP,
    jp_answer,
    junglepay,
    live_subscription_with_renewal,
    payload,
    post_webhook,
    postback,
    sandbox,
)
from tests.billing.paymentkit import (
    transaction as jp_transaction,
)
from tests.concurrency import race
from tests.factories import CheckoutFactory, PlanFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


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


ROOT = Path(__file__).resolve().parents[2]


@responses.activate
def test_a_renewal_whose_pix_expired_gets_a_fresh_charge(jp):
    # given: a renewal whose JunglePay PIX (282) expired yesterday
    now = timezone.now()
    _subscription, renewal = live_subscription_with_renewal(now=now)
    Checkout.objects.filter(pk=renewal.pk).update(
        gateway=jp, gateway_transaction_id="282", gateway_status="waiting_payment", pix_code="old", pix_expires_at=now - timedelta(days=1)
    )
    create = responses.post(f"{JP}/transactions", json=jp_answer(renewal, transaction_id=283, expires_on=timezone.localdate(now) + timedelta(days=1)))

    # when
    charged = issue_pix_charge(checkout_id=renewal.public_id, now=now)

    # then: a fresh charge for the same checkout, and the old one kept
    assert create.call_count == 1
    assert json.loads(create.calls[0].request.body)["externalRef"] == str(renewal.public_id)
    assert charged.gateway_transaction_id == "283"
    assert charged.pix_expires_at > now
    assert list(CheckoutCharge.objects.filter(checkout=renewal).values_list("gateway__kind", "transaction_id")) == [("junglepay", "282")]

    # and: asked again while the fresh one is payable, the same charge
    assert issue_pix_charge(checkout_id=renewal.public_id, now=now).gateway_transaction_id == "283"
    assert create.call_count == 1


@responses.activate
def test_a_lookup_after_an_unconfirmed_create_never_mistakes_the_replaced_charge_for_the_fresh_one(jp):
    # given: a renewal whose expired charge 282 is being replaced, and a create that times out
    now = timezone.now()
    _subscription, renewal = live_subscription_with_renewal(now=now)
    Checkout.objects.filter(pk=renewal.pk).update(gateway=jp, gateway_transaction_id="282", pix_expires_at=now - timedelta(hours=1))
    create = responses.post(f"{JP}/transactions", body=requests.ConnectionError("reset"))
    old = jp_answer(renewal, transaction_id=282)
    responses.get(f"{JP}/transactions", json={"data": [old]})

    # when: the lookup by externalRef finds only the old charge
    with pytest.raises(GatewayUnavailable):
        issue_pix_charge(checkout_id=renewal.public_id, now=now)

    # then: not adopted; the checkout waits for the next attempt, which looks first
    renewal.refresh_from_db()
    assert renewal.gateway_transaction_id == ""
    assert renewal.charge_attempts.get().outcome == ChargeAttempt.Outcome.UNCONFIRMED
    responses.upsert(responses.GET, f"{JP}/transactions", json={"data": [old, jp_answer(renewal, transaction_id=283)]})
    assert issue_pix_charge(checkout_id=renewal.public_id, now=now).gateway_transaction_id == "283"
    assert create.call_count == 1


@responses.activate
def test_a_late_payment_of_a_replaced_charge_still_pays_its_checkout(client, jp):
    # given: a renewal whose expired charge 282 was replaced by 283
    now = timezone.now()
    subscription, renewal = live_subscription_with_renewal(now=now)
    end_date = subscription.end_date
    Checkout.objects.filter(pk=renewal.pk).update(gateway=jp, gateway_transaction_id="282", pix_expires_at=now - timedelta(hours=1))
    responses.post(f"{JP}/transactions", json=jp_answer(renewal, transaction_id=283))
    issue_pix_charge(checkout_id=renewal.public_id, now=now)
    renewal.refresh_from_db()

    # when: the old QR is paid after all (the gateway confirms 282 paid, without our externalRef)
    old = Checkout(public_id=renewal.public_id, gateway_transaction_id="282", total_cents=renewal.total_cents)
    responses.upsert(responses.GET, f"{JP}/transactions/282", json=jp_transaction(old, status="paid", externalRef=None))
    response = post_webhook(client, "junglepay", postback(old), token=jp.postback_token)

    # then: matched by the old transaction id, the renewal is paid and the period extended
    assert response.status_code == 200
    assert WebhookEvent.objects.get().outcome == WebhookEvent.Outcome.PROCESSED
    renewal.refresh_from_db()
    subscription.refresh_from_db()
    assert renewal.status == Checkout.Status.PAID
    assert subscription.end_date == end_date + timedelta(days=renewal.plan.duration_days)


@responses.activate
def test_the_end_of_a_replaced_charge_does_not_fail_its_checkout(client, jp):
    # given: charge 282 replaced by 283
    now = timezone.now()
    _subscription, renewal = live_subscription_with_renewal(now=now)
    Checkout.objects.filter(pk=renewal.pk).update(gateway=jp, gateway_transaction_id="282", pix_expires_at=now - timedelta(hours=1))
    responses.post(f"{JP}/transactions", json=jp_answer(renewal, transaction_id=283))
    issue_pix_charge(checkout_id=renewal.public_id, now=now)

    # when: JunglePay cancels the old one
    old = Checkout(public_id=renewal.public_id, gateway_transaction_id="282", total_cents=renewal.total_cents)
    responses.upsert(responses.GET, f"{JP}/transactions/282", json=jp_transaction(old, status="canceled"))
    post_webhook(client, "junglepay", postback(old, status="canceled"), token=jp.postback_token)

    # then: the fresh charge is still payable
    renewal.refresh_from_db()
    assert renewal.status == Checkout.Status.PENDING
    assert renewal.gateway_transaction_id == "283"
    assert WebhookEvent.objects.get().outcome == WebhookEvent.Outcome.IGNORED


@responses.activate
def test_a_renewal_opened_on_the_sandbox_gets_a_junglepay_charge_after_the_switch(settings, db):
    # given: a renewal charged on the sandbox, then JunglePay becomes the active gateway
    settings.JUNGLEPAY_API_URL = JP
    settings.SANDBOX_GATEWAY_ALLOWED = True
    sandbox()
    _subscription, renewal = live_subscription_with_renewal()
    sandbox_charge = issue_pix_charge(checkout_id=renewal.public_id)
    jp = junglepay()
    create = responses.post(f"{JP}/transactions", json=jp_answer(renewal, transaction_id=283))

    # when
    charged = issue_pix_charge(checkout_id=renewal.public_id)

    # then: a payable JunglePay charge; the sandbox one is kept
    assert create.call_count == 1
    assert (charged.gateway_id, charged.gateway_transaction_id) == (jp.pk, "283")
    assert CheckoutCharge.objects.get(checkout=renewal).transaction_id == sandbox_charge.gateway_transaction_id


@responses.activate
def test_the_renewal_link_of_a_discontinued_plan_opens_its_payment_page(client, jp):
    # given: a renewal of a plan that is no longer sold
    plan = PlanFactory(price_cents=3980)
    subscription, renewal = live_subscription_with_renewal(plan=plan)
    plan.is_active = False
    plan.save()
    client.force_login(subscription.user)

    # when: the e-mail's link, and the account page's
    page = client.get(f"/checkout/pay/{renewal.public_id}/", follow=True)
    account = client.get("/account/")

    # then: the payment page opens, the account offers it, and its PIX is issued
    assert page.status_code == 200
    assert str(renewal.public_id) in page.content.decode()
    assert account.status_code == 200
    assert f"?checkout={renewal.public_id}" in account.content.decode()
    responses.post(f"{JP}/transactions", json=jp_answer(renewal))
    pix = client.post("/api/checkout/pix", data={"checkout_id": str(renewal.public_id)}, content_type="application/json")
    assert pix.status_code == 200, pix.content
    assert pix.json()["transaction_id"] == "282"


@responses.activate
def test_a_renewal_without_cpf_and_phone_is_never_sent_to_the_gateway(jp):
    # given: the sweep's renewal of an admin-activated subscription (no paid checkout of ours to copy from)
    now = timezone.now()
    SubscriptionFactory(start_date=now - timedelta(days=28), end_date=now + timedelta(days=1), plan_match_rule=Subscription.PlanMatch.ADMIN)
    sweep_subscriptions(now=now)
    renewal = Checkout.objects.get(purpose=Checkout.Purpose.RENEWAL)
    assert (renewal.customer_document, renewal.customer_phone) == ("", "")

    # when / then: refused with a clear error, before any call
    with pytest.raises(CustomerDetailsRequired) as excinfo:
        issue_pix_charge(checkout_id=renewal.public_id, now=now)
    assert set(excinfo.value.fields) == {"cpf", "phone"}
    assert len(responses.calls) == 0


@responses.activate
def test_the_renewal_page_asks_for_cpf_and_phone_and_stores_them_before_the_charge(client, jp):
    # given: a renewal without CPF and phone
    subscription, renewal = live_subscription_with_renewal(document="", phone="")
    client.force_login(subscription.user)

    # when: the renewal page opens
    page = client.get(f"/checkout/pay/{renewal.public_id}/", follow=True)

    # then: it asks for them
    assert page.status_code == 200
    assert 'data-testid="renewal-needs-details"' in page.content.decode()
    assert json.loads(re.search(r'id="checkout-data" type="application/json">(.*?)</script>', page.content.decode()).group(1))[
        "resume_needs_details"
    ] is True

    # when: the PIX is asked without them, or with a bad CPF
    create = responses.post(f"{JP}/transactions", json=jp_answer(renewal))
    missing = client.post("/api/checkout/pix", data={"checkout_id": str(renewal.public_id)}, content_type="application/json")
    bad = client.post(
        "/api/checkout/pix", data={"checkout_id": str(renewal.public_id), "cpf": "111.111.111-11", "phone": "(11) 98765-4321"},
        content_type="application/json",
    )

    # then: refused, naming the fields, nothing charged
    assert missing.status_code == 400
    assert missing.json()["error"]["code"] == "customer_details_required"
    assert set(missing.json()["error"]["fields"]) == {"cpf", "phone"}
    assert bad.status_code == 400
    assert "cpf" in bad.json()["error"]["fields"]
    assert create.call_count == 0

    # when: with valid ones
    good = client.post(
        "/api/checkout/pix", data={"checkout_id": str(renewal.public_id), "cpf": "529.982.247-25", "phone": "(11) 98765-4321"},
        content_type="application/json",
    )

    # then: stored on the renewal and sent with its charge
    assert good.status_code == 200, good.content
    renewal.refresh_from_db()
    assert (renewal.customer_document, renewal.customer_phone) == ("52998224725", "11987654321")
    sent = json.loads(create.calls[0].request.body)["customer"]
    assert (sent["document"]["number"], sent["phone"]) == ("52998224725", "11987654321")


def test_the_charge_lock_and_provider_waits_end_before_the_worker_timeout(settings):
    # Every gunicorn we start reads config/gunicorn_conf.py, whose timeout no command line overrides.
    for path in ("Dockerfile", "docker-compose.yml", "rehearsal/run.py"):
        text = (ROOT / path).read_text()
        assert "config/gunicorn_conf.py" in text, f"{path} starts gunicorn without config/gunicorn_conf.py"
        assert "--timeout" not in text, f"{path} overrides gunicorn's timeout"
    timeout = re.search(r"^timeout = (\d+)$", (ROOT / "config/gunicorn_conf.py").read_text(), re.M)
    assert timeout is not None, "config/gunicorn_conf.py sets no timeout"
    assert int(timeout.group(1)) == charges_module.WORKER_TIMEOUT_SECONDS
    locked_steps = 2 * (charges_module.LOCK_WAIT_SECONDS + charges_module.STATEMENT_TIMEOUT_SECONDS)
    assert settings.GATEWAY_REQUEST_BUDGET_SECONDS + locked_steps < charges_module.WORKER_TIMEOUT_SECONDS


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@responses.activate
def test_a_second_pix_request_while_the_first_is_creating_answers_try_again_and_never_charges_twice(settings, monkeypatch):
    # given: a JunglePay that takes far longer to create than a second caller waits for the lock
    settings.JUNGLEPAY_API_URL = JP
    junglepay()
    monkeypatch.setattr(charges_module, "LOCK_WAIT_SECONDS", 0.2)
    checkout = create_checkout(
        plan=PlanFactory(price_cents=3980), customer_name="Ana Souza", customer_email="ana@example.com",
        customer_document="52998224725", customer_phone="11987654321",
    )

    def slow_create(request):
        time.sleep(2)
        return 200, {}, json.dumps(jp_answer(checkout))

    create = responses.add_callback(responses.POST, f"{JP}/transactions", callback=slow_create, content_type="application/json")
    results = []

    def pay():
        results.append(issue_pix_charge(checkout_id=checkout.public_id).gateway_transaction_id)

    # when: two requests at once
    errors = race(pay, pay)

    # then: one charge; the other caller was told to try again, and then gets that same charge
    assert create.call_count == 1
    assert results == ["282"]
    assert [type(error) for error in errors] == [ChargeInProgress]
    assert issue_pix_charge(checkout_id=checkout.public_id).gateway_transaction_id == "282"
    assert create.call_count == 1
