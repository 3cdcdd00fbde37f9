"""JunglePay postbacks: verify → store → fetch the transaction → act, exactly once."""

import json
from datetime import timedelta

import pytest
import responses
from django.utils import timezone

from billing.access import user_has_access
from billing.gateways.junglepay import JunglePayGateway
from billing.ledger_models import LedgerEntry
from billing.models import Checkout, ReconciliationItem, Subscription, WebhookEvent
from billing.personal_data import mask_personal_data
from billing.reconciliation import reconcile_payments
from billing.webhooks import (
    MAX_ATTEMPTS,
    claim_event,
    process_event,
    processing_lease,
    receive_webhook,
    retry_failed_events,
    store_event,
)
from config.beat import PERIODIC_TASKS
from integrations.models import OutboxEvent, WebhookEndpoint
from tests.billing.paymentkit import JP, jp_checkout, junglepay, payload, post_webhook, postback, transaction
from tests.concurrency import race
from tests.factories import (
    UserFactory,
)

Outcome = WebhookEvent.Outcome


@pytest.fixture
def checkout(jp):
    return jp_checkout(jp, customer_email="ana@example.com")


def fetch_answers(checkout, status="paid", **changes):
    responses.upsert(responses.GET, f"{JP}/transactions/{checkout.gateway_transaction_id}", json=transaction(checkout, status=status, **changes))


def deliver(client, jp, body):
    return post_webhook(client, "junglepay", body, token=jp.postback_token)


@pytest.mark.django_db
def test_it_rejects_a_bad_or_missing_token_and_stores_nothing(client, jp, checkout, caplog):
    body = postback(checkout)
    assert post_webhook(client, "junglepay", body, token="wrong").status_code == 401
    assert client.post("/api/webhook/junglepay", data=json.dumps(body), content_type="application/json").status_code == 401
    assert post_webhook(client, "junglepay", body, token=jp.postback_token + "x").status_code == 401
    assert not WebhookEvent.objects.exists()
    assert "bad or missing token" in caplog.text
    checkout.refresh_from_db()
    assert checkout.status == Checkout.Status.PENDING


@pytest.mark.django_db
def test_it_refuses_a_body_above_the_limit(client, jp, settings):
    settings.WEBHOOK_MAX_BODY_BYTES = 1000
    response = deliver(client, jp, {"id": 1, "type": "transaction", "data": {"x": "a" * 2000}})
    assert response.status_code == 413
    assert not WebhookEvent.objects.exists()


@pytest.mark.django_db
def test_a_malformed_body_is_stored_and_answered_400(client, jp):
    response = deliver(client, jp, b'{"id": 1, "type": "transac')

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_body"
    event = WebhookEvent.objects.get()
    assert event.body == '{"id": 1, "type": "transac' and event.payload is None
    assert event.outcome == Outcome.IGNORED and "malformed JSON" in event.error


@pytest.mark.django_db
@responses.activate
def test_an_unknown_type_is_stored_answered_200_and_ignored(client, jp):
    body = payload("junglepay_postback_checkout_type.json", token=jp.postback_token)

    response = deliver(client, jp, body)

    assert response.status_code == 200
    event = WebhookEvent.objects.get()
    assert event.outcome == Outcome.IGNORED and "checkout" in event.error
    assert len(responses.calls) == 0  # nothing fetched, nothing changed


@pytest.mark.django_db
@responses.activate
def test_an_unknown_status_is_stored_answered_200_and_ignored(client, jp, checkout):
    fetch_answers(checkout, status="teleported")

    response = deliver(client, jp, postback(checkout, status="teleported"))

    assert response.status_code == 200
    assert WebhookEvent.objects.get().outcome == Outcome.IGNORED
    checkout.refresh_from_db()
    assert checkout.status == Checkout.Status.PENDING


@pytest.mark.django_db
@responses.activate
def test_paid_activates_the_subscription(client, jp, checkout, django_capture_on_commit_callbacks):
    fetch_answers(checkout, status="paid", paidAt=timezone.now().isoformat())

    with django_capture_on_commit_callbacks(execute=True):
        response = deliver(client, jp, postback(checkout))

    assert response.status_code == 200 and response.json()["status"] == "processed"
    checkout.refresh_from_db()
    assert checkout.status == Checkout.Status.PAID and checkout.gateway_status == "paid"
    assert checkout.user.email == "ana@example.com" and user_has_access(checkout.user)
    event = WebhookEvent.objects.get()
    assert event.outcome == Outcome.PROCESSED and event.checkout == checkout and event.attempts == 1


@pytest.mark.django_db
@responses.activate
def test_the_body_says_paid_but_the_gateway_says_waiting_so_nothing_happens(client, jp, checkout):
    fetch_answers(checkout, status="waiting_payment")

    response = deliver(client, jp, postback(checkout, status="paid"))

    assert response.status_code == 200
    checkout.refresh_from_db()
    assert checkout.status == Checkout.Status.PENDING
    assert not Subscription.objects.filter(status=Subscription.Status.ACTIVE).exists()
    assert responses.calls[0].request.url == f"{JP}/transactions/282"


@pytest.mark.django_db
@responses.activate
def test_a_paid_amount_that_differs_is_not_activated(client, jp, checkout):
    fetch_answers(checkout, status="paid", amount=100)

    deliver(client, jp, postback(checkout))

    checkout.refresh_from_db()
    assert checkout.status == Checkout.Status.PENDING
    event = WebhookEvent.objects.get()
    assert event.outcome == Outcome.FAILED and "differs" in event.error


@pytest.mark.django_db
@responses.activate
def test_the_same_event_ten_times_changes_state_once(client, jp, checkout):
    fetch_answers(checkout, status="paid")
    body = postback(checkout)

    answers = [deliver(client, jp, body).json()["status"] for _ in range(10)]

    assert answers == ["processed"] + ["duplicate"] * 9
    assert WebhookEvent.objects.count() == 1
    assert Subscription.objects.filter(status=Subscription.Status.ACTIVE).count() == 1
    assert len(responses.calls) == 1  # duplicates do not even ask the gateway


@pytest.mark.django_db
@responses.activate
def test_out_of_order_delivery_ends_paid(client, jp, checkout):
    # given: "paid" arrives first
    fetch_answers(checkout, status="paid")
    deliver(client, jp, postback(checkout, postback_id=2, status="paid"))
    end_date = Subscription.objects.get().end_date

    # when: the older "waiting_payment" postback arrives afterwards (the gateway still says paid)
    deliver(client, jp, postback(checkout, postback_id=1, status="waiting_payment"))
    # and even a stale fetch answering "waiting" moves nothing back
    fetch_answers(checkout, status="waiting_payment")
    deliver(client, jp, postback(checkout, postback_id=3, status="waiting_payment"))

    # then
    checkout.refresh_from_db()
    assert checkout.status == Checkout.Status.PAID and checkout.gateway_status == "paid"
    subscription = Subscription.objects.get()
    assert subscription.status == Subscription.Status.ACTIVE and subscription.end_date == end_date


@pytest.mark.django_db
@responses.activate
@pytest.mark.parametrize("provider_status", ["refunded", "chargedback", "in_protest"])
def test_refund_chargeback_or_dispute_revokes_access(client, jp, checkout, provider_status):
    fetch_answers(checkout, status="paid")
    deliver(client, jp, postback(checkout, postback_id=1))
    checkout.refresh_from_db()
    assert user_has_access(checkout.user)

    fetch_answers(checkout, status=provider_status)
    deliver(client, jp, postback(checkout, postback_id=2, status=provider_status))

    checkout.refresh_from_db()
    assert checkout.status == Checkout.Status.REFUNDED
    assert Subscription.objects.get().status == Subscription.Status.REFUNDED
    assert not user_has_access(checkout.user)


@pytest.mark.django_db
@responses.activate
@pytest.mark.parametrize(
    ("provider_status", "kind", "announced"),
    [
        ("refunded", LedgerEntry.Kind.REFUND, "payment.refunded"),
        ("chargedback", LedgerEntry.Kind.CHARGEBACK, "payment.chargedback"),
        ("in_protest", LedgerEntry.Kind.CHARGEBACK, "payment.chargedback"),
    ],
)
def test_a_pix_chargeback_or_dispute_is_recorded_and_announced_as_a_chargeback_not_a_refund(
    client, jp, checkout, provider_status, kind, announced
):
    # given: a paid PIX checkout and an endpoint that listens to both
    WebhookEndpoint.objects.create(url="https://crm.example.com/hook", events=["payment.refunded", "payment.chargedback"])
    fetch_answers(checkout, status="paid")
    deliver(client, jp, postback(checkout, postback_id=1))

    # when: the bank takes the money back (or the MED dispute opens), or the seller refunds
    fetch_answers(checkout, status=provider_status)
    deliver(client, jp, postback(checkout, postback_id=2, status=provider_status))

    # then: the ledger and the outbound event name what happened
    money_back = LedgerEntry.objects.get(checkout=checkout, kind__in=[LedgerEntry.Kind.REFUND, LedgerEntry.Kind.CHARGEBACK])
    assert money_back.kind == kind
    money_back_events = OutboxEvent.objects.filter(type__in=["payment.refunded", "payment.chargedback"])
    assert list(money_back_events.values_list("type", flat=True)) == [announced]


@pytest.mark.django_db
@responses.activate
@pytest.mark.parametrize(("provider_status", "expected"), [("refused", "failed"), ("canceled", "canceled")])
def test_refused_or_canceled_fails_the_checkout(client, jp, checkout, provider_status, expected):
    fetch_answers(checkout, status=provider_status)

    deliver(client, jp, postback(checkout, status=provider_status))

    checkout.refresh_from_db()
    assert checkout.status == expected


@pytest.mark.django_db
@responses.activate
def test_a_failed_event_is_kept_and_its_replay_applies_it(client, jp, checkout):
    # given: the gateway is down when the postback arrives
    responses.get(f"{JP}/transactions/282", status=503)
    response = deliver(client, jp, postback(checkout))
    assert response.status_code == 200  # stored: the provider need not retry, our task will
    event = WebhookEvent.objects.get()
    assert event.outcome == Outcome.FAILED and event.error

    # when: the gateway is back and the admin replays the event
    fetch_answers(checkout, status="paid")
    assert process_event(event=event) == Outcome.PROCESSED

    # then
    event.refresh_from_db()
    checkout.refresh_from_db()
    assert event.outcome == Outcome.PROCESSED and event.error == "" and event.attempts == 2
    assert checkout.status == Checkout.Status.PAID


@pytest.mark.django_db
@responses.activate
def test_the_retry_task_retries_failed_events_with_backoff(client, jp, checkout):
    responses.get(f"{JP}/transactions/282", status=503)
    deliver(client, jp, postback(checkout))
    event = WebhookEvent.objects.get()
    fetch_answers(checkout, status="paid")
    now = event.processed_at

    # Too early: attempt 1 waits 2 minutes.
    assert retry_failed_events(now=now + timedelta(seconds=90))["retried"] == 0
    assert retry_failed_events(now=now + timedelta(minutes=3)) == {"retried": 1, "processed": 1, "failed": 0, "skipped": 0}
    event.refresh_from_db()
    assert event.outcome == Outcome.PROCESSED
    # Done: nothing left to retry.
    assert retry_failed_events(now=now + timedelta(hours=1))["retried"] == 0


@pytest.mark.django_db
def test_the_retry_task_gives_up_after_max_attempts(jp):
    WebhookEvent.objects.create(
        provider="junglepay", event_id="x", body="{}", outcome=Outcome.FAILED, attempts=MAX_ATTEMPTS,
        received_at=timezone.now() - timedelta(days=2), processed_at=timezone.now() - timedelta(days=1),
    )
    assert retry_failed_events()["retried"] == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@responses.activate
@pytest.mark.parametrize("same_event", [True, False], ids=["same-postback", "distinct-postbacks"])
def test_ten_concurrent_deliveries_give_one_subscription(settings, same_event):
    # given
    settings.JUNGLEPAY_API_URL = JP
    jp = junglepay()
    checkout = jp_checkout(jp)
    fetch_answers(checkout, status="paid")
    answers = []

    def send(n):
        from django.test import Client

        body = postback(checkout, postback_id=1 if same_event else 100 + n)
        answers.append(deliver(Client(), jp, body).status_code)

    # when
    assert race(*[lambda n=n: send(n) for n in range(10)]) == []

    # then
    assert answers == [200] * 10
    assert Subscription.objects.count() == 1
    assert Subscription.objects.get().status == Subscription.Status.ACTIVE
    assert Checkout.objects.get().status == Checkout.Status.PAID
    assert WebhookEvent.objects.count() == (1 if same_event else 10)
    assert not WebhookEvent.objects.filter(outcome=Outcome.FAILED).exists()


@pytest.mark.django_db(transaction=True)
@responses.activate
def test_a_failing_email_after_commit_does_not_fail_a_processed_event(settings, client, caplog):
    # given: a payer with no account, and an e-mail backend that is down
    settings.JUNGLEPAY_API_URL = JP
    settings.EMAIL_BACKEND = "tests.billing.test_webhooks_junglepay.BrokenEmailBackend"
    jp = junglepay()
    checkout = jp_checkout(jp, customer_email="semconta@example.com")
    fetch_answers(checkout, status="paid")

    # when
    response = deliver(client, jp, postback(checkout))

    # then: the payment is applied and the event says so; the e-mail failure is only logged
    assert response.status_code == 200 and response.json()["status"] == "processed"
    assert WebhookEvent.objects.get().outcome == Outcome.PROCESSED
    checkout.refresh_from_db()
    assert checkout.status == Checkout.Status.PAID
    assert "set-password e-mail not sent" in caplog.text  # logged by accounts, retried by its task


class BrokenEmailBackend:
    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        raise ConnectionRefusedError("SMTP is down")


@pytest.mark.django_db
@responses.activate
def test_query_budget_of_a_paid_postback_and_of_a_duplicate(client, jp, checkout, django_assert_max_num_queries):
    fetch_answers(checkout, status="paid")
    with django_assert_max_num_queries(29):  # + the webhook endpoints, the tracking pixels and the buyer's cookie consent read by activation, its ledger rows (one INSERT)
        deliver(client, jp, postback(checkout))
    with django_assert_max_num_queries(6):
        assert deliver(client, jp, postback(checkout)).json()["status"] == "duplicate"


@pytest.mark.django_db
@responses.activate
@pytest.mark.parametrize("body", [b'{"id": "a\\u0000b", "type": "transaction", "data": {"id": "\\u0000"}}', b"\x00\x01garbage", b"[]"])
def test_hostile_bodies_are_stored_and_never_crash(client, jp, body):
    responses.get(f"{JP}/transactions/%00", status=404)
    response = deliver(client, jp, body)
    assert response.status_code in (200, 400)
    assert WebhookEvent.objects.count() == 1


@pytest.mark.django_db
@responses.activate
def test_a_charge_of_one_gateway_never_moves_a_checkout_of_another(client, jp):
    # given: a sandbox checkout, and a JunglePay "paid" transaction claiming its uuid
    from tests.billing.paymentkit import sandbox

    other = sandbox(active=False)
    checkout = jp_checkout(other, transaction_id="sbx_1")
    data = transaction(checkout, status="paid")
    data["id"] = 555
    responses.get(f"{JP}/transactions/555", json=data)
    body = postback(checkout)
    body["data"]["id"] = 555

    # when
    deliver(client, jp, body)

    # then
    checkout.refresh_from_db()
    assert checkout.status == Checkout.Status.PENDING
    assert WebhookEvent.objects.get().outcome == Outcome.IGNORED


# ---------------------------------------------------------------------------
# A worker killed while processing: the event is leased, never lost
# ---------------------------------------------------------------------------


def _left_by_a_killed_worker(checkout, *, received_at):
    """What a worker killed mid-processing leaves: the event stored (its lease taken then), no outcome."""
    body = postback(checkout)
    event, _created = store_event(
        provider="junglepay", event_id=str(body["id"]), headers={}, body=json.dumps(body), payload=body, now=received_at
    )
    return body, event


@pytest.mark.django_db
@responses.activate
def test_a_redelivery_of_an_event_whose_worker_died_is_processed_not_called_a_duplicate(client, jp, checkout):
    # given: the first delivery's worker died mid-processing longer ago than its lease
    body, event = _left_by_a_killed_worker(checkout, received_at=timezone.now() - processing_lease() - timedelta(seconds=1))
    fetch_answers(checkout, status="paid")

    # when: JunglePay re-sends it
    response = deliver(client, jp, body)

    # then: processed now, once
    assert response.json()["status"] == Outcome.PROCESSED
    event.refresh_from_db()
    checkout.refresh_from_db()
    assert event.outcome == Outcome.PROCESSED and event.attempts == 1
    assert checkout.status == Checkout.Status.PAID
    assert deliver(client, jp, body).json()["status"] == "duplicate"
    assert Subscription.objects.count() == 1


@pytest.mark.django_db
@responses.activate
def test_a_redelivery_while_the_event_is_being_processed_is_a_duplicate(client, jp, checkout):
    # given: an event whose processing started a moment ago (its lease is running)
    body, event = _left_by_a_killed_worker(checkout, received_at=timezone.now())
    fetch = responses.get(f"{JP}/transactions/282", json=transaction(checkout, status="paid"))

    # when
    response = deliver(client, jp, body)

    # then: not processed twice at once; the lease holder (or the retry task, once it runs out) finishes it
    assert response.json()["status"] == "duplicate"
    assert fetch.call_count == 0
    event.refresh_from_db()
    assert event.outcome == Outcome.RECEIVED


@pytest.mark.django_db
@responses.activate
def test_the_retry_task_takes_an_event_whose_worker_died_within_a_minute(jp, checkout):
    # given: an event left by a killed worker
    received_at = timezone.now()
    _body, event = _left_by_a_killed_worker(checkout, received_at=received_at)
    fetch_answers(checkout, status="paid")
    every = next(task["every"] for task in PERIODIC_TASKS if task["task"] == "billing.tasks.retry_failed_webhooks")

    # when / then: not while its lease runs; at the first run after it, even if beat just missed it
    assert retry_failed_events(now=received_at + processing_lease() - timedelta(seconds=1))["retried"] == 0
    latest_pickup = processing_lease() + timedelta(seconds=every)
    assert latest_pickup <= timedelta(seconds=50)  # a paid buyer waits less than a minute
    assert retry_failed_events(now=received_at + latest_pickup)["processed"] == 1
    event.refresh_from_db()
    checkout.refresh_from_db()
    assert event.outcome == Outcome.PROCESSED and checkout.status == Checkout.Status.PAID


@pytest.mark.django_db
def test_of_two_claims_on_one_stuck_event_only_one_wins(jp, checkout):
    # given: one stuck event, read by two workers
    received_at = timezone.now() - timedelta(minutes=5)
    _body, event = _left_by_a_killed_worker(checkout, received_at=received_at)
    first, second = WebhookEvent.objects.get(pk=event.pk), WebhookEvent.objects.get(pk=event.pk)
    now = timezone.now()

    # when / then
    assert claim_event(first, now=now, redelivery=True) is True
    assert claim_event(second, now=now, redelivery=True) is False
    # and: the winner holds a fresh lease, so a third claimant now also loses
    assert claim_event(WebhookEvent.objects.get(pk=event.pk), now=now) is False


Kind = ReconciliationItem.Kind


@pytest.mark.django_db
@responses.activate
def test_a_partially_paid_postback_is_recorded_and_listed_but_grants_nothing(client, jp):
    # given: a R$ 39,80 charge of which R$ 10,00 arrived
    user = UserFactory()
    checkout = jp_checkout(jp, user=user)
    fetch_answers(checkout, "partially_paid", paidAmount=1000)

    # when: the postback comes, twice
    for _ in range(2):
        assert post_webhook(client, "junglepay", postback(checkout, status="partially_paid"), token=jp.postback_token).status_code == 200

    # then
    checkout.refresh_from_db()
    assert checkout.status == Checkout.Status.PENDING and checkout.paid_amount_cents == 1000
    item = ReconciliationItem.objects.get()
    assert item.kind == Kind.PARTIAL_PAYMENT and item.checkout == checkout and item.amount_cents == 1000 and not item.resolved
    assert WebhookEvent.objects.get().outcome == Outcome.PROCESSED
    assert not Subscription.objects.exists() and not user_has_access(user)


@pytest.mark.django_db
@responses.activate
def test_reconciliation_lists_a_partial_payment_instead_of_calling_it_pending(jp):
    checkout = jp_checkout(jp, transaction_id="282")
    partial = transaction(checkout, status="partially_paid", paidAmount=1500)
    responses.get(f"{JP}/transactions", json={"data": [partial], "pagination": {"page": 1, "totalPages": 1}})

    [report] = reconcile_payments()
    [again] = reconcile_payments()

    assert report.flagged == 1 and report.matched == 0 and again.flagged == 0
    item = ReconciliationItem.objects.get()
    assert item.kind == Kind.PARTIAL_PAYMENT and item.amount_cents == 1500
    checkout.refresh_from_db()
    assert checkout.status == Checkout.Status.PENDING and checkout.paid_amount_cents == 1500


@pytest.mark.django_db
@responses.activate
def test_a_due_event_behind_250_waiting_ones_is_retried(jp):
    # given: 250 failed events, older but not yet due, and one due event received after them
    now = timezone.now()
    WebhookEvent.objects.bulk_create(
        WebhookEvent(
            provider="junglepay", event_id=f"waiting-{n}", body="{}", outcome=Outcome.FAILED, attempts=5,
            received_at=now - timedelta(hours=3), processed_at=now - timedelta(minutes=1), next_attempt_at=now + timedelta(minutes=31),
        )
        for n in range(250)
    )
    checkout = jp_checkout(jp)
    due = WebhookEvent.objects.create(
        provider="junglepay", event_id="due", body=json.dumps(postback(checkout)), outcome=Outcome.FAILED, attempts=1,
        received_at=now - timedelta(hours=1), processed_at=now - timedelta(minutes=5), next_attempt_at=now - timedelta(minutes=3),
    )
    fetch_answers(checkout, "paid")

    # when
    counts = retry_failed_events(now=now)

    # then
    due.refresh_from_db()
    assert counts["retried"] == 1 and due.outcome == Outcome.PROCESSED and due.next_attempt_at is None
    checkout.refresh_from_db()
    assert checkout.status == Checkout.Status.PAID


@pytest.mark.django_db
@responses.activate
def test_a_failed_event_is_scheduled_by_its_backoff(client, jp):
    checkout = jp_checkout(jp)
    responses.get(f"{JP}/transactions/282", status=503)

    post_webhook(client, "junglepay", postback(checkout), token=jp.postback_token)

    event = WebhookEvent.objects.get()
    assert event.outcome == Outcome.FAILED and event.attempts == 1
    assert event.next_attempt_at == event.processed_at + timedelta(minutes=2)


@pytest.mark.django_db
@responses.activate
def test_a_live_postback_is_parsed_once(jp, monkeypatch):
    checkout = jp_checkout(jp)
    fetch_answers(checkout, "paid")
    body = json.dumps(postback(checkout), separators=(",", ":")).encode()
    loads_of_the_body = []
    parses = []
    real_loads, real_parse = json.loads, JunglePayGateway.parse_notification

    def counting_loads(value, *args, **kwargs):
        if value in (body, body.decode()):
            loads_of_the_body.append(value)
        return real_loads(value, *args, **kwargs)

    def counting_parse(self, raw):
        parses.append(raw)
        return real_parse(self, raw)

    monkeypatch.setattr(json, "loads", counting_loads)
    monkeypatch.setattr(JunglePayGateway, "parse_notification", counting_parse)

    result = receive_webhook(provider="junglepay", token=jp.postback_token, body=body)

    assert result.status_code == 200 and result.body["status"] == Outcome.PROCESSED
    assert len(parses) == 1 and len(loads_of_the_body) == 1
    assert WebhookEvent.objects.get().payload == mask_personal_data(real_loads(body))  # stored masked
