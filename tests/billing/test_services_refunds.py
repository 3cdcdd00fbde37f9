"""
Refunds and chargebacks through the one refund path (billing.services.refund_checkout,
apply_charge's `refunded`): a refund takes back what the refunded transaction paid for,
and nothing another payment bought (contract §9.5).
"""


import pytest
import responses
from django.utils import timezone

from billing.access import user_has_access
from billing.models import Checkout, ReconciliationItem, Subscription, WebhookEvent
from tests.billing.paymentkit import JP, charge_of, pay_charge, post_webhook, postback, renewal_with_two_charges, transaction

pytestmark = pytest.mark.django_db


def _refund_postback(client, jp, renewal, transaction_id, postback_id, status="refunded"):
    """The gateway says `transaction_id` (one of the checkout's charges) was refunded."""
    charge = charge_of(renewal, transaction_id)
    responses.upsert(
        responses.GET, f"{JP}/transactions/{transaction_id}",
        json=transaction(charge, status=status, externalRef=str(renewal.public_id)),
    )
    return post_webhook(client, "junglepay", postback(charge, postback_id=postback_id, status=status), token=jp.postback_token)


@responses.activate
def test_refunding_a_duplicate_payment_closes_its_review_item_and_keeps_the_period_the_first_payment_bought(client, jp):
    # given: a renewal paid by its old QR 282, then by its fresh one 283 (listed as a duplicate)
    now = timezone.now()
    subscription, renewal = renewal_with_two_charges(jp, now=now)
    pay_charge(client, jp, renewal, "282", postback_id=1)
    pay_charge(client, jp, renewal, "283", postback_id=2)
    subscription.refresh_from_db()
    end_date = subscription.end_date

    # when: a person refunds 283 at JunglePay, whose `refunded` postback (same externalRef) arrives
    assert _refund_postback(client, jp, renewal, "283", postback_id=3).status_code == 200

    # then: the renewal stays paid, the subscription keeps its period, the duplicate's item is closed
    renewal.refresh_from_db()
    subscription.refresh_from_db()
    assert renewal.status == Checkout.Status.PAID
    assert (subscription.status, subscription.end_date) == (Subscription.Status.ACTIVE, end_date)
    assert user_has_access(subscription.user)
    item = ReconciliationItem.objects.get(kind=ReconciliationItem.Kind.DUPLICATE_PAYMENT)
    assert item.resolved and item.detail["refunded"] == "refunded"
    event = WebhookEvent.objects.order_by("received_at", "pk").last()
    assert event.outcome == WebhookEvent.Outcome.PROCESSED


@responses.activate
def test_a_chargeback_of_a_duplicate_payment_keeps_the_period_the_first_payment_bought(client, jp):
    now = timezone.now()
    subscription, renewal = renewal_with_two_charges(jp, now=now)
    pay_charge(client, jp, renewal, "282", postback_id=1)
    pay_charge(client, jp, renewal, "283", postback_id=2)

    _refund_postback(client, jp, renewal, "283", postback_id=3, status="chargedback")

    renewal.refresh_from_db()
    subscription.refresh_from_db()
    assert renewal.status == Checkout.Status.PAID and subscription.status == Subscription.Status.ACTIVE
    assert ReconciliationItem.objects.get(kind=ReconciliationItem.Kind.DUPLICATE_PAYMENT).resolved


@responses.activate
def test_refunding_the_transaction_that_paid_still_refunds_the_checkout(client, jp):
    now = timezone.now()
    subscription, renewal = renewal_with_two_charges(jp, now=now)
    pay_charge(client, jp, renewal, "282", postback_id=1)
    pay_charge(client, jp, renewal, "283", postback_id=2)

    _refund_postback(client, jp, renewal, "282", postback_id=3)

    renewal.refresh_from_db()
    subscription.refresh_from_db()
    assert renewal.status == Checkout.Status.REFUNDED and subscription.status == Subscription.Status.REFUNDED
    # the duplicate is still money to give back: its item stays open
    assert not ReconciliationItem.objects.get(kind=ReconciliationItem.Kind.DUPLICATE_PAYMENT).resolved
