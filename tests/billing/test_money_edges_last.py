"""
Issue 11, the last money edges: a marketplace (Dias) payment waits unclaimed
while its e-mail's account is not confirmed, as guest checkouts do (defect
11, contract §3); a checkout paid by both of its PIX QRs keeps the second
payment and lists it to be refunded (defect 7's replaced charges), never a
second period.
"""

import re
from datetime import timedelta

import pytest
import responses
from django.core import mail
from django.utils import timezone

from accounts.models import User
from accounts.services import confirm_email
from billing.access import user_has_access
from billing.gateways import ChargeStatus
from billing.gateways.junglepay import charge_from_transaction
from billing.models import (
    Checkout,
    ReconciliationItem,
    Subscription,
    UnclaimedMarketplacePayment,
    WebhookEvent,
)
from billing.reconciliation import reconcile_gateway
from billing.services import apply_charge, checkout_for_charge, issue_pix_charge, record_marketplace_payment
from tests.billing.paymentkit import JP, dias, junglepay, payload, post_webhook, postback, transaction
from tests.billing.test_money_edges_charges import jp_answer, live_subscription_with_renewal
from tests.factories import PlanFactory, UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "s3nha-bem-forte!"
EMAIL = "carla@example.com"  # the payer of the recorded Dias payloads


def _link_path(message) -> str:
    return re.search(r"https?://[^/\s]+(/\S+)", message.body).group(1)


def _squatter_signs_up(api_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post("/api/auth/register", {"email": EMAIL, "password": PASSWORD, "name": "Squatter"}, format="json")
    assert response.status_code == 201
    return User.objects.get(email=EMAIL)


def _deliver_dias(client, gateway, name, path="payment-sucess"):
    return post_webhook(client, f"dias/{path}", payload(name), token=gateway.postback_token)


# ---------------------------------------------------------------------------
# A. A marketplace payment never goes to a squatter's unconfirmed account
# ---------------------------------------------------------------------------


def test_a_marketplace_payment_to_a_squatted_email_waits_until_the_mailbox_owner_confirms(
    api_client, client, django_capture_on_commit_callbacks
):
    # given: a squatter signed up with the payer's e-mail (unconfirmed: the link went to the payer)
    gateway = dias()
    PlanFactory(price_cents=2990, duration_days=30)
    squatter = _squatter_signs_up(api_client, django_capture_on_commit_callbacks)
    confirmation = mail.outbox[-1]

    # when: the payer pays on the marketplace (PENDING, then PAID, then a re-delivery)
    assert _deliver_dias(client, gateway, "dias_pending.json", path="payment-success").status_code == 200
    assert _deliver_dias(client, gateway, "dias_paid.json").status_code == 200
    assert _deliver_dias(client, gateway, "dias_paid.json").status_code == 200

    # then: the money is kept, unclaimed; the squatter has neither a subscription nor access
    assert not Subscription.objects.filter(user=squatter).exists()
    assert not user_has_access(User.objects.get(pk=squatter.pk))
    waiting = UnclaimedMarketplacePayment.objects.get()
    assert (waiting.external_id, waiting.email, waiting.paid_amount_cents) == ("DM-2026-000123", EMAIL, 2990)
    assert waiting.claimed_at is None
    assert not WebhookEvent.objects.filter(outcome=WebhookEvent.Outcome.FAILED).exists()

    # when: the mailbox owner opens the confirmation link
    before = timezone.now()
    assert client.get(_link_path(confirmation)).status_code == 302

    # then: the payment is theirs, a full period from the claim
    owner = User.objects.get(email=EMAIL)
    subscription = Subscription.objects.get(external_id="DM-2026-000123")
    assert subscription.user == owner and subscription.status == Subscription.Status.ACTIVE
    assert subscription.start_date >= before and subscription.end_date - subscription.start_date == timedelta(days=30)
    # The subscription grants access; the account still confirms its age at its next visit (test_rights_age.py).
    assert Subscription.objects.granting_access(timezone.now()).filter(user=owner).exists()
    waiting.refresh_from_db()
    assert waiting.claimed_at is not None and waiting.subscription == subscription


def test_a_password_set_through_the_reset_link_claims_the_waiting_marketplace_payment(
    api_client, client, django_capture_on_commit_callbacks
):
    # given: a squatted e-mail and a marketplace payment waiting for it
    gateway = dias()
    PlanFactory(price_cents=2990, duration_days=30)
    _squatter_signs_up(api_client, django_capture_on_commit_callbacks)
    _deliver_dias(client, gateway, "dias_paid.json")
    assert not Subscription.objects.exists()
    mail.outbox.clear()

    # when: the mailbox owner resets the password through the e-mailed link
    client.post("/accounts/password-reset/", {"email": EMAIL})
    response = client.get(_link_path(mail.outbox[0]), follow=True)
    set_url = response.redirect_chain[-1][0] if response.redirect_chain else _link_path(mail.outbox[0])
    assert client.post(set_url, {"new_password1": PASSWORD, "new_password2": PASSWORD}).status_code == 302

    # then: access from then
    owner = User.objects.get(email=EMAIL)
    assert owner.email_confirmed_at is not None
    assert Subscription.objects.get(external_id="DM-2026-000123").user == owner
    assert Subscription.objects.granting_access(timezone.now()).filter(user=owner).exists()


def test_claiming_a_marketplace_payment_twice_grants_the_period_once():
    # given: a waiting marketplace payment
    dias()
    PlanFactory(price_cents=2990, duration_days=30)
    user = UserFactory(email=EMAIL, email_confirmed_at=None)
    paid_on = timezone.now() - timedelta(days=2)
    assert record_marketplace_payment(external_id="DM-1", status=ChargeStatus.PAID, amount_cents=2990, email=EMAIL, now=paid_on) is None
    now = timezone.now()

    # when: confirmed, then confirmed again a day later, and the PAID re-delivered
    confirm_email(user=user, now=now)
    confirm_email(user=user, now=now + timedelta(days=1))
    record_marketplace_payment(external_id="DM-1", status=ChargeStatus.PAID, amount_cents=2990, email=EMAIL, now=now + timedelta(days=1))

    # then: one period, from the first claim
    subscription = Subscription.objects.get(user=user)
    assert (subscription.start_date, subscription.end_date) == (now, now + timedelta(days=30))


def test_a_marketplace_payment_to_a_confirmed_account_gives_access_at_once():
    dias()
    PlanFactory(price_cents=2990)
    user = UserFactory(email=EMAIL)

    subscription = record_marketplace_payment(external_id="DM-1", status=ChargeStatus.PAID, amount_cents=2990, email=EMAIL)

    assert subscription.user == user and subscription.status == Subscription.Status.ACTIVE
    assert not UnclaimedMarketplacePayment.objects.exists()


def test_the_admin_lists_unclaimed_marketplace_payments(admin_client):
    dias()
    PlanFactory(price_cents=2990)
    UserFactory(email=EMAIL, email_confirmed_at=None)
    record_marketplace_payment(external_id="DM-1", status=ChargeStatus.PAID, amount_cents=2990, email=EMAIL)

    response = admin_client.get("/admin/billing/unclaimedmarketplacepayment/?claimed_at__isempty=1")

    assert response.status_code == 200
    assert [p.external_id for p in response.context["cl"].queryset] == ["DM-1"]


# ---------------------------------------------------------------------------
# B. Both PIX QRs of one checkout paid: the second is kept and listed
# ---------------------------------------------------------------------------


@pytest.fixture
def jp(settings, db):
    settings.JUNGLEPAY_API_URL = JP
    return junglepay()


def _renewal_with_two_charges(jp, *, now):
    """A renewal whose expired charge 282 was replaced by 283 (both still payable at the bank)."""
    subscription, renewal = live_subscription_with_renewal(now=now)
    Checkout.objects.filter(pk=renewal.pk).update(gateway=jp, gateway_transaction_id="282", pix_expires_at=now - timedelta(hours=1))
    responses.post(f"{JP}/transactions", json=jp_answer(renewal, transaction_id=283))
    issue_pix_charge(checkout_id=renewal.public_id, now=now)
    renewal.refresh_from_db()
    return subscription, renewal


def _charge(renewal, transaction_id):
    """The checkout as one of its charges (no externalRef: matched by the transaction id)."""
    return Checkout(public_id=renewal.public_id, gateway_transaction_id=transaction_id, total_cents=renewal.total_cents)


def _pay(client, jp, renewal, transaction_id, postback_id):
    charge = _charge(renewal, transaction_id)
    responses.upsert(responses.GET, f"{JP}/transactions/{transaction_id}", json=transaction(charge, status="paid", externalRef=None))
    return post_webhook(client, "junglepay", postback(charge, postback_id=postback_id), token=jp.postback_token)


@responses.activate
def test_both_qrs_of_one_checkout_paid_list_the_second_payment_for_a_refund_and_give_one_period(client, jp):
    # given: a renewal with a replaced charge 282 and its fresh one 283
    now = timezone.now()
    subscription, renewal = _renewal_with_two_charges(jp, now=now)
    end_date = subscription.end_date
    days = timedelta(days=renewal.plan_duration_days)

    # when: the old QR is paid, then the fresh one too
    assert _pay(client, jp, renewal, "282", postback_id=1).status_code == 200
    assert _pay(client, jp, renewal, "283", postback_id=2).status_code == 200

    # then: one period; the second money is listed for a person to refund
    subscription.refresh_from_db()
    renewal.refresh_from_db()
    assert subscription.end_date == end_date + days
    assert renewal.status == Checkout.Status.PAID and renewal.paid_transaction_id == "282"
    item = ReconciliationItem.objects.get(kind=ReconciliationItem.Kind.DUPLICATE_PAYMENT)
    assert (item.transaction_id, item.checkout, item.amount_cents) == ("283", renewal, renewal.total_cents)
    assert item.detail["paid_by"] == "282" and not item.resolved
    second = WebhookEvent.objects.order_by("received_at", "pk").last()
    assert second.outcome == WebhookEvent.Outcome.PROCESSED and "duplicate" in second.error


@responses.activate
def test_a_redelivered_paid_postback_of_the_paying_transaction_stays_already_paid(client, jp):
    # given: a renewal paid by its fresh charge 283
    now = timezone.now()
    subscription, renewal = _renewal_with_two_charges(jp, now=now)
    _pay(client, jp, renewal, "283", postback_id=1)
    subscription.refresh_from_db()
    end_date = subscription.end_date

    # when: the same transaction's paid postback comes again (a new postback id)
    _pay(client, jp, renewal, "283", postback_id=2)

    # then: nothing listed, nothing changed
    assert not ReconciliationItem.objects.filter(kind=ReconciliationItem.Kind.DUPLICATE_PAYMENT).exists()
    subscription.refresh_from_db()
    assert subscription.end_date == end_date
    last = WebhookEvent.objects.order_by("received_at", "pk").last()
    assert (last.outcome, last.error) == (WebhookEvent.Outcome.IGNORED, "already paid")


@responses.activate
def test_reconciliation_lists_the_second_qr_paid_of_a_paid_checkout(jp):
    # given: a renewal paid by its old QR 282; the gateway lists 283 paid as well
    now = timezone.now()
    _subscription, renewal = _renewal_with_two_charges(jp, now=now)
    paid_282 = charge_from_transaction(transaction(_charge(renewal, "282"), status="paid", externalRef=None))
    apply_charge(checkout=checkout_for_charge(jp, paid_282), charge=paid_282, now=now)
    listing = [transaction(_charge(renewal, "283"), status="paid")]
    responses.get(f"{JP}/transactions", json={"data": listing})

    # when
    report = reconcile_gateway(config=jp, now=now)

    # then
    assert report.flagged == 1
    item = ReconciliationItem.objects.get(kind=ReconciliationItem.Kind.DUPLICATE_PAYMENT)
    assert item.transaction_id == "283" and item.checkout == renewal


@responses.activate
def test_a_second_qr_paid_while_the_first_was_being_applied_is_listed_not_given_a_second_period(jp):
    # given: both QRs' payments read the checkout while it was still pending
    now = timezone.now()
    subscription, renewal = _renewal_with_two_charges(jp, now=now)
    end_date = subscription.end_date
    stale = Checkout.objects.get(pk=renewal.pk)
    paid_282 = charge_from_transaction(transaction(_charge(renewal, "282"), status="paid", externalRef=None))
    paid_283 = charge_from_transaction(transaction(_charge(renewal, "283"), status="paid"))

    # when: the first applies, then the second on its stale read (decided again under the lock)
    apply_charge(checkout=checkout_for_charge(jp, paid_282), charge=paid_282, now=now)
    apply_charge(checkout=stale, charge=paid_283, now=now)

    # then: one period, the second payment listed
    subscription.refresh_from_db()
    assert subscription.end_date == end_date + timedelta(days=renewal.plan_duration_days)
    item = ReconciliationItem.objects.get(kind=ReconciliationItem.Kind.DUPLICATE_PAYMENT)
    assert item.transaction_id == "283" and item.detail["paid_by"] == "282"
