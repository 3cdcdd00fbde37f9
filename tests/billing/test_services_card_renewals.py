"""Automatic renewal with the saved card (contract §8): notice, charge at end_date, refusals and retries, faults."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from billing import services
from billing.models import CardAttempt, Checkout, Subscription
from billing.services import sweep_subscriptions
from billing.services.charges import in_flight_window
from tests.billing.cardkit import APPROVED, card_checkout
from tests.concurrency import race
from tests.factories import UserFactory

DAY = timedelta(days=1)


def _card_subscription(fake) -> Subscription:
    """A yearly subscription bought by card (a reusable Visa •••• 4242), through the fake JunglePay."""
    checkout = card_checkout(user=UserFactory())
    services.charge_card(checkout_id=checkout.public_id, card_hash=APPROVED)
    fake.bodies.clear()
    fake.posts = 0
    return Subscription.objects.get(pk=Checkout.objects.get(pk=checkout.pk).subscription_id)


def _renewal(subscription) -> Checkout:
    return Checkout.objects.get(subscription=subscription, purpose=Checkout.Purpose.RENEWAL)


def _refuse_next_charges(fake, subscription):
    fake.card_outcomes[subscription.card_id] = "refused"


@pytest.mark.django_db
def test_the_notice_names_the_card_and_the_day_it_will_be_charged(card_junglepay, django_capture_on_commit_callbacks):
    subscription = _card_subscription(card_junglepay)
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        sweep_subscriptions(now=subscription.end_date - 3 * DAY)

    renewal = _renewal(subscription)
    assert renewal.payment_method == Checkout.Method.CARD
    [notice] = mail.outbox
    assert "Visa •••• 4242" in notice.body
    assert card_junglepay.posts == 0  # nothing charged before end_date


@pytest.mark.django_db
def test_at_end_date_the_sweep_charges_the_saved_card_once_and_extends_from_end_date(card_junglepay):
    subscription = _card_subscription(card_junglepay)
    end = subscription.end_date
    sweep_subscriptions(now=end - 3 * DAY)

    sweep_subscriptions(now=end + timedelta(minutes=5))
    sweep_subscriptions(now=end + timedelta(minutes=10))

    [body] = card_junglepay.bodies
    assert body["card"] == {"id": subscription.card_id}
    assert body["amount"] == subscription.plan.price_cents and body["installments"] == 1
    renewal = _renewal(subscription)
    assert body["externalRef"] != str(renewal.public_id)  # its own per attempt
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.ACTIVE
    assert subscription.end_date == end + timedelta(days=365)
    assert renewal.card_attempts.get().status == CardAttempt.Status.PAID


@pytest.mark.django_db
def test_a_refused_renewal_goes_past_due_emails_a_link_and_is_retried_on_the_retry_days_then_expires(
    card_junglepay, settings, django_capture_on_commit_callbacks
):
    settings.CARD_RENEWAL_RETRY_DAYS = (1, 2)
    settings.SUBSCRIPTION_GRACE_DAYS = 3
    subscription = _card_subscription(card_junglepay)
    end = subscription.end_date
    sweep_subscriptions(now=end - 3 * DAY)
    _refuse_next_charges(card_junglepay, subscription)
    mail.outbox.clear()

    # at end_date: refused → past due, e-mailed a link to pay by PIX or another card
    with django_capture_on_commit_callbacks(execute=True):
        sweep_subscriptions(now=end + timedelta(minutes=5))
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.PAST_DUE
    [refused] = mail.outbox
    renewal = _renewal(subscription)
    assert str(renewal.public_id) in refused.body and "Visa •••• 4242" in refused.body
    # not again the same day; again on day 1 and day 2
    sweep_subscriptions(now=end + timedelta(hours=12))
    assert card_junglepay.posts == 1
    sweep_subscriptions(now=end + DAY + timedelta(minutes=5))
    sweep_subscriptions(now=end + 2 * DAY + timedelta(minutes=5))
    assert card_junglepay.posts == 3
    assert list(renewal.card_attempts.order_by("number").values_list("status", flat=True)) == ["refused"] * 3
    # unpaid at the end of grace: expired, and never charged again
    sweep_subscriptions(now=end + 3 * DAY + timedelta(minutes=5))
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.EXPIRED
    assert card_junglepay.posts == 3


@pytest.mark.django_db
def test_a_refused_renewal_paid_on_a_retry_extends_from_the_old_end_date(card_junglepay):
    subscription = _card_subscription(card_junglepay)
    end = subscription.end_date
    sweep_subscriptions(now=end - 3 * DAY)
    _refuse_next_charges(card_junglepay, subscription)
    sweep_subscriptions(now=end + timedelta(minutes=5))

    card_junglepay.card_outcomes.clear()  # the subscriber paid the card's bill
    sweep_subscriptions(now=end + DAY + timedelta(minutes=5))

    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.ACTIVE
    assert subscription.end_date == end + timedelta(days=365)


@pytest.mark.django_db
def test_cancel_at_period_end_is_never_charged(card_junglepay):
    subscription = _card_subscription(card_junglepay)
    services.cancel_subscription(subscription=subscription)

    for days in (-3, 0, 1, 2):
        sweep_subscriptions(now=subscription.end_date + days * DAY + timedelta(minutes=5))

    assert card_junglepay.posts == 0


@pytest.mark.django_db
def test_a_removed_card_is_never_charged_and_its_renewal_becomes_pix(card_junglepay, django_capture_on_commit_callbacks):
    subscription = _card_subscription(card_junglepay)
    end = subscription.end_date
    sweep_subscriptions(now=end - 3 * DAY)
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        services.remove_saved_card(user=subscription.user)
    sweep_subscriptions(now=end + timedelta(minutes=5))

    assert card_junglepay.posts == 0
    renewal = _renewal(subscription)
    assert renewal.payment_method == Checkout.Method.PIX
    [pix_notice] = mail.outbox
    assert str(renewal.public_id) in pix_notice.body and "••••" not in pix_notice.body


@pytest.mark.django_db
def test_a_worker_killed_mid_call_is_recovered_by_looking_the_attempt_up(card_junglepay):
    # given: a sweep claimed attempt 1, the gateway charged the card, the worker died before the answer
    subscription = _card_subscription(card_junglepay)
    end = subscription.end_date
    sweep_subscriptions(now=end - 3 * DAY)
    renewal = _renewal(subscription)
    attempt = CardAttempt.objects.create(
        checkout=renewal, subscription=subscription, gateway=subscription.card_gateway, kind=CardAttempt.Kind.RENEWAL,
        number=1, external_ref="3d1c8a6e-0b7f-4c59-a7b3-5a1f9e2d4c10", amount_cents=renewal.total_cents, created_at=end,
    )
    card_junglepay._create({"paymentMethod": "credit_card", "card": {"id": subscription.card_id}, "amount": renewal.total_cents,
                            "externalRef": attempt.external_ref})

    # when: the next sweep runs
    sweep_subscriptions(now=end + in_flight_window() + timedelta(minutes=5))

    # then: found by its externalRef and applied; nothing charged again
    assert card_junglepay.posts == 0
    attempt.refresh_from_db()
    subscription.refresh_from_db()
    assert attempt.status == CardAttempt.Status.PAID
    assert subscription.end_date == end + timedelta(days=365)


@pytest.mark.django_db
def test_a_gateway_that_is_down_leaves_the_attempt_to_the_next_run_without_a_double_charge(card_junglepay):
    subscription = _card_subscription(card_junglepay)
    end = subscription.end_date
    sweep_subscriptions(now=end - 3 * DAY)
    card_junglepay.create_mode = "fail_before_create"

    sweep_subscriptions(now=end + timedelta(minutes=5))
    attempt = _renewal(subscription).card_attempts.get()
    assert attempt.status == CardAttempt.Status.IN_FLIGHT  # unconfirmed: looked up before any new charge

    card_junglepay.create_mode = "ok"
    sweep_subscriptions(now=end + timedelta(minutes=10))

    attempt.refresh_from_db()
    assert attempt.status == CardAttempt.Status.ERROR  # the lookup found nothing: it never charged
    subscription.refresh_from_db()
    assert subscription.end_date == end + timedelta(days=365)
    # the purchase and one renewal: the failed create made no transaction, and none was made twice
    assert len([t for t in card_junglepay.transactions.values() if t.get("status") == "paid"]) == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_charge_the_saved_card_once(card_junglepay):
    subscription = _card_subscription(card_junglepay)
    end = subscription.end_date
    sweep_subscriptions(now=end - 3 * DAY)
    card_junglepay.create_delay = 0.2  # both sweeps are inside the charge step together
    now = end + timedelta(minutes=5)

    errors = race(lambda: sweep_subscriptions(now=now), lambda: sweep_subscriptions(now=now))

    assert not errors
    assert card_junglepay.posts == 1
    subscription.refresh_from_db()
    assert subscription.end_date == end + timedelta(days=365)
    assert CardAttempt.objects.filter(kind=CardAttempt.Kind.RENEWAL).count() == 1


@pytest.mark.django_db
def test_every_card_operation_keeps_the_money_audit_clean(card_junglepay, client):
    from billing.audit import run_audit
    from billing.exceptions import CardRefused
    from billing.models import PaymentGateway
    from tests.billing.cardkit import PROCESSING, REFUSED_NO_FUNDS
    from tests.billing.paymentkit import post_webhook

    token = PaymentGateway.objects.get(kind="junglepay").postback_token
    # a refusal, then another card in 3 installments
    refused_first = card_checkout(user=UserFactory())
    with pytest.raises(CardRefused):
        services.charge_card(checkout_id=refused_first.public_id, card_hash=REFUSED_NO_FUNDS)
    services.charge_card(checkout_id=refused_first.public_id, card_hash=APPROVED, installments=3)
    # processing, then its postback
    waiting = card_checkout(user=UserFactory())
    attempt = services.charge_card(checkout_id=waiting.public_id, card_hash=PROCESSING)
    card_junglepay.set_status(attempt.transaction_id, "paid")
    post_webhook(client, "junglepay", card_junglepay.postback_body(attempt.transaction_id), token=token)
    # a chargeback
    charged_back = card_checkout(user=UserFactory())
    paid = services.charge_card(checkout_id=charged_back.public_id, card_hash=APPROVED)
    card_junglepay.set_status(paid.transaction_id, "chargedback")
    post_webhook(client, "junglepay", card_junglepay.postback_body(paid.transaction_id), token=token)
    # renewals: one paid at end_date, one refused then paid on the first retry, one with its card removed
    renewed, retried, removed = (_card_subscription(card_junglepay) for _ in range(3))
    end = renewed.end_date
    sweep_subscriptions(now=end - 3 * DAY + timedelta(minutes=1))  # all three renewals issued (bought a moment apart)
    services.remove_saved_card(user=removed.user)
    card_junglepay.card_outcomes[retried.card_id] = "refused"
    sweep_subscriptions(now=end + timedelta(minutes=5))
    card_junglepay.card_outcomes.clear()
    sweep_subscriptions(now=end + DAY + timedelta(minutes=5))

    report = run_audit(now=end + DAY + timedelta(minutes=10))

    assert report.violations == [], [str(v) for v in report.violations]
    assert Checkout.objects.get(pk=charged_back.pk).status == Checkout.Status.REFUNDED
    assert _renewal(renewed).status == _renewal(retried).status == Checkout.Status.PAID


@pytest.mark.django_db
def test_the_finance_dashboard_splits_by_method_and_shows_card_renewal_success(card_junglepay, client):
    from django.urls import reverse

    from billing.selectors import get_method_figures
    from tests.factories import CheckoutFactory

    CheckoutFactory(status=Checkout.Status.PAID, paid_at=timezone.now())  # a PIX sale
    first_try, retried = _card_subscription(card_junglepay), _card_subscription(card_junglepay)
    end = first_try.end_date
    sweep_subscriptions(now=end - 3 * DAY + timedelta(minutes=1))  # both renewals issued (bought a moment apart)
    card_junglepay.card_outcomes[retried.card_id] = "refused"
    sweep_subscriptions(now=end + timedelta(minutes=5))
    card_junglepay.card_outcomes.clear()
    sweep_subscriptions(now=end + DAY + timedelta(minutes=5))

    rows, renewals = get_method_figures(now=end + DAY + timedelta(minutes=10))

    by_method = {row.method: row for row in rows}
    assert by_method["card"].paid == 0 or by_method["card"].revenue_cents >= 0  # the purchases are a year old here
    assert (renewals.card_issued, renewals.card_paid_first_try, renewals.card_paid_after_retries) == (2, 1, 1)
    assert renewals.card_success_pct == 100.0
    rows_now, _ = get_method_figures()
    assert {r.method: r.paid for r in rows_now} == {"pix": 1, "card": 2}
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    page = client.get(reverse("admin:billing_financedashboard_changelist"))
    assert page.status_code == 200 and b"fin-card-renewals" in page.content


@pytest.mark.django_db
def test_the_account_page_shows_the_saved_card_automatic_renewal_and_removes_it(card_junglepay, client):
    subscription = _card_subscription(card_junglepay)
    client.force_login(subscription.user)

    page = client.get("/account/").content.decode()
    removed = client.post("/account/card/remove/", follow=True).content.decode()

    assert "Visa •••• 4242" in page and 'data-testid="auto-renew"' in page and 'id="remove-card"' in page
    assert "•••• 4242" not in removed
    subscription.refresh_from_db()
    assert subscription.card_id == ""
