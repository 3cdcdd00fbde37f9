"""Card payments at the checkout (services.cards): one charge, the bank's answer, the card saved for renewals."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django.utils.translation import override

from billing import services
from billing.exceptions import CardRefused, ChargeInProgress, InvalidInput
from billing.models import CardAttempt, Checkout, ReconciliationItem, Subscription
from billing.services.charges import in_flight_window
from integrations.models import OutboxEvent, WebhookEndpoint
from tests.billing.cardkit import (
    APPROVED,
    APPROVED_NOT_REUSABLE,
    PROCESSING,
    REFUSED_NO_FUNDS,
    REFUSED_UNKNOWN_CODE,
    card_checkout,
)
from tests.billing.paymentkit import post_webhook
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _webhook(client, fake, transaction_id):
    from billing.models import PaymentGateway

    token = PaymentGateway.objects.get(kind="junglepay").postback_token
    return post_webhook(client, "junglepay", fake.postback_body(transaction_id), token=token)


def test_an_approved_card_pays_the_checkout_once_in_installments_and_saves_the_reusable_card(card_junglepay):
    checkout = card_checkout()

    attempt = services.charge_card(checkout_id=checkout.public_id, card_hash=APPROVED, installments=3, client_ip="203.0.113.9")

    # the gateway got one credit_card charge of the unchanged total, by hash, with our externalRef
    [body] = card_junglepay.bodies
    assert body["paymentMethod"] == "credit_card"
    assert body["card"] == {"hash": APPROVED}
    assert body["installments"] == 3
    assert body["amount"] == 23990
    assert body["externalRef"] == str(checkout.public_id)
    assert body["ip"] == "203.0.113.9"
    assert attempt.status == CardAttempt.Status.PAID
    checkout.refresh_from_db()
    assert checkout.status == Checkout.Status.PAID
    assert (checkout.payment_method, checkout.installments, checkout.card_brand, checkout.card_last_digits) == ("card", 3, "visa", "4242")
    subscription = checkout.subscription
    assert subscription.status == Subscription.Status.ACTIVE
    assert (subscription.card_brand, subscription.card_last_digits, subscription.card_exp_month, subscription.card_exp_year) == (
        "visa", "4242", 12, 2030,
    )
    assert subscription.card_id.startswith("card_")
    assert subscription.auto_renew


def test_a_card_the_gateway_says_is_not_reusable_pays_but_is_not_saved(card_junglepay):
    checkout = card_checkout()

    services.charge_card(checkout_id=checkout.public_id, card_hash=APPROVED_NOT_REUSABLE)

    checkout.refresh_from_db()
    assert checkout.status == Checkout.Status.PAID
    assert checkout.subscription.card_id == ""
    assert not checkout.subscription.auto_renew


def test_calling_again_for_a_paid_checkout_answers_the_payment_and_charges_nothing(card_junglepay):
    checkout = card_checkout()
    first = services.charge_card(checkout_id=checkout.public_id, card_hash=APPROVED)

    again = services.charge_card(checkout_id=checkout.public_id, card_hash=APPROVED)

    assert again.pk == first.pk
    assert card_junglepay.posts == 1


def test_a_refusal_gives_the_banks_reason_in_the_buyers_language_and_the_checkout_stays_payable(card_junglepay):
    checkout = card_checkout()

    with override("pt-br"), pytest.raises(CardRefused) as refused:
        services.charge_card(checkout_id=checkout.public_id, card_hash=REFUSED_NO_FUNDS)

    assert refused.value.code == "card_refused"
    assert "Saldo insuficiente" in refused.value.message
    checkout.refresh_from_db()
    assert checkout.status == Checkout.Status.PENDING
    attempt = CardAttempt.objects.get(checkout=checkout)
    assert (attempt.status, attempt.refusal_code) == (CardAttempt.Status.REFUSED, "51")

    # another card, on the same checkout
    services.charge_card(checkout_id=checkout.public_id, card_hash=APPROVED)
    checkout.refresh_from_db()
    assert checkout.status == Checkout.Status.PAID
    assert CardAttempt.objects.filter(checkout=checkout).count() == 2


def test_a_refusal_with_a_code_we_do_not_know_shows_the_gateways_own_words(card_junglepay):
    checkout = card_checkout()

    with pytest.raises(CardRefused) as refused:
        services.charge_card(checkout_id=checkout.public_id, card_hash=REFUSED_UNKNOWN_CODE)

    assert refused.value.message == "Transação não permitida pelo emissor"


def test_a_refusal_answered_with_http_402_is_read_as_a_refusal(card_junglepay):
    card_junglepay.refused_with_4xx = True
    checkout = card_checkout()

    with pytest.raises(CardRefused):
        services.charge_card(checkout_id=checkout.public_id, card_hash=REFUSED_NO_FUNDS)

    assert CardAttempt.objects.get(checkout=checkout).status == CardAttempt.Status.REFUSED


def test_a_refusal_is_announced_as_payment_refused(card_junglepay):
    WebhookEndpoint.objects.create(url="https://crm.example.com/hook", events=["payment.refused"])
    checkout = card_checkout()

    with pytest.raises(CardRefused):
        services.charge_card(checkout_id=checkout.public_id, card_hash=REFUSED_NO_FUNDS)

    [event] = OutboxEvent.objects.filter(type="payment.refused")
    assert event.data["checkout_id"] == str(checkout.public_id)
    assert event.data["refusal"]["code"] == "51"


def test_installments_beyond_the_plans_maximum_are_refused_before_any_charge(card_junglepay):
    checkout = card_checkout()

    with pytest.raises(InvalidInput) as invalid:
        services.charge_card(checkout_id=checkout.public_id, card_hash=APPROVED, installments=4)

    assert "installments" in invalid.value.fields
    assert card_junglepay.posts == 0


def test_a_processing_charge_waits_for_its_postback_and_then_activates(card_junglepay, client):
    checkout = card_checkout()

    attempt = services.charge_card(checkout_id=checkout.public_id, card_hash=PROCESSING)
    assert attempt.status == CardAttempt.Status.PROCESSING
    checkout.refresh_from_db()
    assert checkout.status == Checkout.Status.PENDING

    # a second click while processing charges nothing
    assert services.charge_card(checkout_id=checkout.public_id, card_hash=APPROVED).pk == attempt.pk
    assert card_junglepay.posts == 1

    # the gateway decides, and posts back (twice: idempotent)
    card_junglepay.set_status(attempt.transaction_id, "paid")
    assert _webhook(client, card_junglepay, attempt.transaction_id).status_code == 200
    assert _webhook(client, card_junglepay, attempt.transaction_id).status_code == 200

    checkout.refresh_from_db()
    assert checkout.status == Checkout.Status.PAID
    assert checkout.subscription.card_last_digits == "0119"
    assert Subscription.objects.filter(user=checkout.user).count() == 1


def test_a_refused_postback_after_processing_never_fails_the_checkout(card_junglepay, client):
    checkout = card_checkout()
    attempt = services.charge_card(checkout_id=checkout.public_id, card_hash=PROCESSING)

    card_junglepay.set_status(attempt.transaction_id, "refused")
    _webhook(client, card_junglepay, attempt.transaction_id)

    attempt.refresh_from_db()
    checkout.refresh_from_db()
    assert attempt.status == CardAttempt.Status.REFUSED
    assert checkout.status == Checkout.Status.PENDING


def test_an_out_of_order_processing_postback_after_paid_changes_nothing(card_junglepay, client):
    checkout = card_checkout()
    attempt = services.charge_card(checkout_id=checkout.public_id, card_hash=APPROVED)

    card_junglepay.set_status(attempt.transaction_id, "processing")
    _webhook(client, card_junglepay, attempt.transaction_id)

    attempt.refresh_from_db()
    checkout.refresh_from_db()
    assert attempt.status == CardAttempt.Status.PAID
    assert checkout.status == Checkout.Status.PAID


def test_a_chargeback_of_the_card_revokes_access_like_a_refund(card_junglepay, client):
    WebhookEndpoint.objects.create(url="https://crm.example.com/hook", events=["payment.chargedback"])
    checkout = card_checkout()
    attempt = services.charge_card(checkout_id=checkout.public_id, card_hash=APPROVED)

    card_junglepay.set_status(attempt.transaction_id, "chargedback")
    _webhook(client, card_junglepay, attempt.transaction_id)

    checkout.refresh_from_db()
    attempt.refresh_from_db()
    assert checkout.status == Checkout.Status.REFUNDED
    assert checkout.subscription.status == Subscription.Status.REFUNDED
    assert attempt.status == CardAttempt.Status.REFUNDED
    assert OutboxEvent.objects.filter(type="payment.chargedback").count() == 1


def test_a_create_answer_lost_to_a_timeout_is_found_by_external_ref_and_not_charged_again(card_junglepay):
    # given: JunglePay charges the card but answers after our read timeout
    card_junglepay.create_delay = 1.0
    checkout = card_checkout()

    attempt = services.charge_card(checkout_id=checkout.public_id, card_hash=APPROVED)

    assert attempt.status == CardAttempt.Status.PAID
    assert card_junglepay.posts == 1
    checkout.refresh_from_db()
    assert checkout.status == Checkout.Status.PAID


def test_an_attempt_left_in_flight_by_a_killed_worker_is_looked_up_before_any_new_charge(card_junglepay):
    # given: a worker claimed the attempt, the gateway charged the card, and the worker died before the answer
    now = timezone.now()
    checkout = card_checkout()
    CardAttempt.objects.create(
        checkout=checkout, gateway=_junglepay(), external_ref=str(checkout.public_id), amount_cents=checkout.total_cents,
        created_at=now - in_flight_window() - timedelta(seconds=1),
    )
    card_junglepay._create({"paymentMethod": "credit_card", "card": {"hash": APPROVED}, "amount": checkout.total_cents, "externalRef": str(checkout.public_id)})

    # when: the buyer tries again
    attempt = services.charge_card(checkout_id=checkout.public_id, card_hash=APPROVED, now=now)

    # then: the lost charge was found and applied; nothing was posted again
    assert card_junglepay.posts == 0
    assert attempt.status == CardAttempt.Status.PAID
    checkout.refresh_from_db()
    assert checkout.status == Checkout.Status.PAID


def test_an_attempt_in_flight_that_never_reached_the_gateway_is_closed_and_the_new_card_charged(card_junglepay):
    now = timezone.now()
    checkout = card_checkout()
    lost = CardAttempt.objects.create(
        checkout=checkout, gateway=_junglepay(), external_ref=str(checkout.public_id), amount_cents=checkout.total_cents,
        created_at=now - in_flight_window() - timedelta(seconds=1),
    )

    attempt = services.charge_card(checkout_id=checkout.public_id, card_hash=APPROVED, now=now)

    lost.refresh_from_db()
    assert lost.status == CardAttempt.Status.ERROR
    assert attempt.status == CardAttempt.Status.PAID
    assert card_junglepay.posts == 1


def test_a_second_request_while_an_attempt_is_in_flight_is_told_to_wait(card_junglepay):
    now = timezone.now()
    checkout = card_checkout()
    CardAttempt.objects.create(checkout=checkout, gateway=_junglepay(), external_ref=str(checkout.public_id), amount_cents=1, created_at=now)

    with pytest.raises(ChargeInProgress):
        services.charge_card(checkout_id=checkout.public_id, card_hash=APPROVED, now=now)

    assert card_junglepay.posts == 0


def test_a_pix_paid_after_the_card_is_listed_as_a_duplicate_never_a_second_period(card_junglepay, client):
    # given: the buyer issued a PIX, then paid by card
    checkout = card_checkout()
    services.issue_pix_charge(checkout_id=checkout.public_id)
    pix_id = Checkout.objects.get(pk=checkout.pk).gateway_transaction_id
    services.charge_card(checkout_id=checkout.public_id, card_hash=APPROVED)
    checkout.refresh_from_db()
    end = checkout.subscription.end_date

    # when: the PIX is paid as well
    card_junglepay.set_status(pix_id, "paid")
    _webhook(client, card_junglepay, pix_id)

    # then: listed to be refunded, no day added
    checkout.refresh_from_db()
    assert checkout.subscription.end_date == end
    assert ReconciliationItem.objects.filter(kind=ReconciliationItem.Kind.DUPLICATE_PAYMENT, transaction_id=pix_id).exists()


def test_removing_the_saved_card_ends_automatic_renewal(card_junglepay):
    checkout = card_checkout(user=UserFactory())
    services.charge_card(checkout_id=checkout.public_id, card_hash=APPROVED)

    assert services.remove_saved_card(user=checkout.user) == 1

    subscription = Subscription.objects.get(pk=Checkout.objects.get(pk=checkout.pk).subscription_id)
    assert (subscription.card_id, subscription.card_last_digits, subscription.auto_renew) == ("", "", False)


def _junglepay():
    from billing.models import PaymentGateway

    return PaymentGateway.objects.get(kind="junglepay")


def test_a_pix_after_a_refused_card_is_a_pix_never_the_refused_card_found_by_its_external_ref(card_junglepay):
    checkout = card_checkout()
    with pytest.raises(CardRefused):
        services.charge_card(checkout_id=checkout.public_id, card_hash=REFUSED_NO_FUNDS)

    pix = services.issue_pix_charge(checkout_id=checkout.public_id)

    assert pix.pix_code
    assert pix.gateway_transaction_id != CardAttempt.objects.get(checkout=checkout).transaction_id
