"""
billing.services.review: a second payment of one checkout (both QR codes of a
replaced charge paid) is listed to be refunded, never a second period.
"""

from datetime import timedelta

import pytest
import responses
from django.utils import timezone

from billing.gateways.junglepay import charge_from_transaction
from billing.models import (
    Checkout,
    ReconciliationItem,
    WebhookEvent,
)
from billing.reconciliation import reconcile_gateway
from billing.services import apply_charge, checkout_for_charge
from tests.billing.paymentkit import (
    JP,
    charge_of,
    pay_charge,
    renewal_with_two_charges,
    transaction,
)

pytestmark = pytest.mark.django_db


@responses.activate
def test_both_qrs_of_one_checkout_paid_list_the_second_payment_for_a_refund_and_give_one_period(client, jp):
    # given: a renewal with a replaced charge 282 and its fresh one 283
    now = timezone.now()
    subscription, renewal = renewal_with_two_charges(jp, now=now)
    end_date = subscription.end_date
    days = timedelta(days=renewal.plan_duration_days)

    # when: the old QR is paid, then the fresh one too
    assert pay_charge(client, jp, renewal, "282", postback_id=1).status_code == 200
    assert pay_charge(client, jp, renewal, "283", postback_id=2).status_code == 200

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
    subscription, renewal = renewal_with_two_charges(jp, now=now)
    pay_charge(client, jp, renewal, "283", postback_id=1)
    subscription.refresh_from_db()
    end_date = subscription.end_date

    # when: the same transaction's paid postback comes again (a new postback id)
    pay_charge(client, jp, renewal, "283", postback_id=2)

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
    _subscription, renewal = renewal_with_two_charges(jp, now=now)
    paid_282 = charge_from_transaction(transaction(charge_of(renewal, "282"), status="paid", externalRef=None))
    apply_charge(checkout=checkout_for_charge(jp, paid_282), charge=paid_282, now=now)
    listing = [transaction(charge_of(renewal, "283"), status="paid")]
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
    subscription, renewal = renewal_with_two_charges(jp, now=now)
    end_date = subscription.end_date
    stale = Checkout.objects.get(pk=renewal.pk)
    paid_282 = charge_from_transaction(transaction(charge_of(renewal, "282"), status="paid", externalRef=None))
    paid_283 = charge_from_transaction(transaction(charge_of(renewal, "283"), status="paid"))

    # when: the first applies, then the second on its stale read (decided again under the lock)
    apply_charge(checkout=checkout_for_charge(jp, paid_282), charge=paid_282, now=now)
    apply_charge(checkout=stale, charge=paid_283, now=now)

    # then: one period, the second payment listed
    subscription.refresh_from_db()
    assert subscription.end_date == end_date + timedelta(days=renewal.plan_duration_days)
    item = ReconciliationItem.objects.get(kind=ReconciliationItem.Kind.DUPLICATE_PAYMENT)
    assert item.transaction_id == "283" and item.detail["paid_by"] == "282"
