"""
Issue 11, charges & renewals: a PIX is payable through its expiration day,
expired or orphaned charges are replaced without losing the old one,
discontinued plans' renewals stay payable, renewals ask for missing CPF and
phone, marketplace subscriptions renew at the marketplace, listings never stop
silently, the /pix lock is bounded, and a token rotation orphans no charge.
"""

import json
import re
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests
import responses
import time_machine
from django.utils import timezone

from billing.exceptions import ChargeInProgress, CustomerDetailsRequired, GatewayUnavailable
from billing.gateways.junglepay import (
    LIST_MAX_PAGES,
    JunglePayGateway,
    ListingIncomplete,
    charge_from_transaction,
)
from billing.models import (
    ChargeAttempt,
    Checkout,
    CheckoutCharge,
    PaymentGateway,
    Subscription,
    WebhookEvent,
)
from billing.reconciliation import reconcile_gateway
from billing.services import charges as charges_module
from billing.services import (
    create_checkout,
    issue_pix_charge,
    rotate_postback_token,
    sweep_subscriptions,
)
from tests.billing.paymentkit import (
    JP,
    jp_checkout,
    junglepay,
    payload,
    post_webhook,
    postback,
    sandbox,
    transaction,
)
from tests.concurrency import race
from tests.factories import PlanFactory, SubscriptionFactory, UserFactory

SAO_PAULO = ZoneInfo("America/Sao_Paulo")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def jp(settings, db):
    settings.JUNGLEPAY_API_URL = JP
    return junglepay()


def jp_answer(checkout, *, transaction_id=282, expires_on=None, **changes):
    """JunglePay's answer to a create for `checkout`: transaction `transaction_id`, PIX payable through `expires_on`."""
    data = payload("junglepay_transaction_waiting.json", ref=checkout.public_id, token="t")
    data.update({"id": transaction_id, "amount": checkout.total_cents, **changes})
    if expires_on is not None:
        data["pix"]["expirationDate"] = expires_on.isoformat()
    return data


def live_subscription_with_renewal(*, plan=None, document="52998224725", phone="11987654321", now=None):
    """A live subscription ending in two days and its pending renewal checkout."""
    now = now or timezone.now()
    plan = plan or PlanFactory(price_cents=3980)
    user = UserFactory()
    subscription = SubscriptionFactory(user=user, plan=plan, start_date=now - timedelta(days=28), end_date=now + timedelta(days=2))
    renewal = create_checkout(
        plan=plan, customer_name="Ana Souza", customer_email=user.email, customer_document=document, customer_phone=phone,
        user=user, purpose=Checkout.Purpose.RENEWAL, subscription=subscription, now=now,
    )
    return subscription, renewal


# ---------------------------------------------------------------------------
# 6. A PIX expirationDate is payable through the end of that day in São Paulo
# ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_pix_expiration_day_is_read_as_the_end_of_that_day_in_sao_paulo():
    day = timezone.localdate() + timedelta(days=1)

    charge = charge_from_transaction({"id": 1, "status": "waiting_payment", "pix": {"qrcode": "x", "expirationDate": day.isoformat()}})

    local = charge.expires_at.astimezone(SAO_PAULO)
    assert local.date() == day
    assert (local.hour, local.minute, local.second) == (23, 59, 59)


@responses.activate
def test_the_sweep_keeps_a_pix_payable_through_its_expiration_day_and_expires_it_after(jp):
    # given: at 20:00 in São Paulo, a first checkout (with its pending subscription) gets a PIX payable through tomorrow
    tomorrow = timezone.localdate() + timedelta(days=1)
    issued_at = datetime.combine(tomorrow - timedelta(days=1), datetime.min.time(), tzinfo=SAO_PAULO).replace(hour=20)
    with time_machine.travel(issued_at, tick=False):
        user = UserFactory()
        checkout = create_checkout(
            plan=PlanFactory(price_cents=3980), customer_name="Ana Souza", customer_email=user.email,
            customer_document="52998224725", customer_phone="11987654321", user=user,
        )
        responses.post(f"{JP}/transactions", json=jp_answer(checkout, expires_on=tomorrow))
        issue_pix_charge(checkout_id=checkout.public_id)

    # when: the sweep runs at 10:00 and at 23:00 of the expiration day (over a day after the checkout)
    for hour in (10, 23):
        with time_machine.travel(datetime.combine(tomorrow, datetime.min.time(), tzinfo=SAO_PAULO).replace(hour=hour), tick=False):
            sweep_subscriptions()

        # then: still payable
        checkout.refresh_from_db()
        assert checkout.status == Checkout.Status.PENDING
        assert checkout.subscription.status == Subscription.Status.PENDING

    # when: and once that day is over
    with time_machine.travel(datetime.combine(tomorrow + timedelta(days=1), datetime.min.time(), tzinfo=SAO_PAULO) + timedelta(seconds=1), tick=False):
        sweep_subscriptions()

    # then: expired, and its never-paid subscription with it
    checkout.refresh_from_db()
    checkout.subscription.refresh_from_db()
    assert checkout.status == Checkout.Status.EXPIRED
    assert checkout.subscription.status == Subscription.Status.EXPIRED


# ---------------------------------------------------------------------------
# 7. Expired or orphaned charges are replaced; the old one is never lost
# ---------------------------------------------------------------------------


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
    responses.upsert(responses.GET, f"{JP}/transactions/282", json=transaction(old, status="paid", externalRef=None))
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
    responses.upsert(responses.GET, f"{JP}/transactions/282", json=transaction(old, status="canceled"))
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


# ---------------------------------------------------------------------------
# 8. Renewals of a discontinued plan stay payable
# ---------------------------------------------------------------------------


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


@pytest.mark.django_db
def test_a_discontinued_plan_is_not_sold_anew(client):
    plan = PlanFactory(is_active=False)

    assert client.get(f"/checkout/{plan.pk}/").status_code == 404
    new_sale = create_checkout(plan=PlanFactory(), customer_name="Ana", customer_email="ana@example.com")
    assert client.get(f"/checkout/{plan.pk}/?checkout={new_sale.public_id}").status_code == 404


# ---------------------------------------------------------------------------
# Renewals without CPF and phone (Dias- or admin-activated subscriptions)
# ---------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------
# Marketplace subscriptions renew at the marketplace
# ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_sweep_issues_no_pix_renewal_for_a_subscription_sold_on_the_marketplace():
    # given: two subscriptions due: one sold on the marketplace, one of ours
    now = timezone.now()
    due = {"start_date": now - timedelta(days=28), "end_date": now + timedelta(days=1)}
    marketplace = SubscriptionFactory(external_id="dias-77", plan_match_rule=Subscription.PlanMatch.EXACT_PRICE, **due)
    nearest = SubscriptionFactory(external_id="dias-78", plan_match_rule=Subscription.PlanMatch.NEAREST_PRICE, **due)
    ours = SubscriptionFactory(**due)

    # when
    result = sweep_subscriptions(now=now)

    # then: only ours gets a PIX renewal
    assert result.renewals_issued == 1
    assert list(Checkout.objects.filter(purpose=Checkout.Purpose.RENEWAL).values_list("subscription_id", flat=True)) == [ours.pk]
    assert not Checkout.objects.filter(subscription__in=[marketplace, nearest]).exists()


# ---------------------------------------------------------------------------
# list_charges never stops silently at its page limit
# ---------------------------------------------------------------------------


@responses.activate
def test_a_listing_cut_at_the_page_limit_says_so_and_reconciliation_reports_it(jp, caplog):
    # given: JunglePay always has another page
    def page(request):
        number = int(request.params["page"])
        item = {"id": 10_000 + number, "status": "waiting_payment", "amount": 100, "externalRef": ""}
        return 200, {}, json.dumps({"data": [item], "pagination": {"page": number, "next": number + 1}})

    listing = responses.add_callback(responses.GET, f"{JP}/transactions", callback=page, content_type="application/json")
    now = timezone.now()

    # when / then: the gateway reads its page limit, yields what it read, and says the rest is missing
    read = []
    with pytest.raises(ListingIncomplete):
        for charge in JunglePayGateway(jp).list_charges(since=now - timedelta(days=3)):
            read.append(charge)
    assert len(read) == LIST_MAX_PAGES == listing.call_count
    assert "junglepay listing stopped with pages left" in caplog.text

    # and: reconciliation lists what it read and reports the listing as an error
    report = reconcile_gateway(config=jp, now=now)
    assert report.listed == LIST_MAX_PAGES
    assert any("listing incomplete" in error for error in report.errors)


# ---------------------------------------------------------------------------
# The /pix row lock is bounded
# ---------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------
# Rotating the postback token orphans no in-flight charge
# ---------------------------------------------------------------------------


@responses.activate
def test_a_postback_with_the_token_before_a_rotation_still_processes(client, jp):
    # given: a charge issued with the current token in its postback URL, then the token is rotated
    checkout = jp_checkout(jp, customer_email="ana@example.com")
    old_token = jp.postback_token
    rotated = rotate_postback_token(gateway=jp)
    assert rotated.postback_token != old_token

    # when: the charge is paid and JunglePay posts to the URL it was given
    responses.upsert(responses.GET, f"{JP}/transactions/282", json=transaction(checkout, status="paid"))
    response = post_webhook(client, "junglepay", postback(checkout), token=old_token)

    # then: authenticated and applied; the new token works too
    assert response.status_code == 200
    checkout.refresh_from_db()
    assert checkout.status == Checkout.Status.PAID
    assert post_webhook(client, "junglepay", postback(checkout, postback_id=2), token=rotated.postback_token).status_code == 200


@pytest.mark.django_db
def test_the_token_before_a_rotation_stops_working_after_its_grace_period(client, jp):
    checkout = jp_checkout(jp)
    old_token = jp.postback_token
    rotate_postback_token(gateway=jp, now=timezone.now() - PaymentGateway.POSTBACK_TOKEN_GRACE - timedelta(minutes=1))

    assert post_webhook(client, "junglepay", postback(checkout), token=old_token).status_code == 401
    assert not WebhookEvent.objects.exists()
