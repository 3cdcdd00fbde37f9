"""Withdrawal (CDC art. 49) raced on PostgreSQL: two requests at once never ask the gateway for two refunds."""

import pytest

from billing import refunds, services
from billing.models import RefundRequest, Subscription
from tests.billing.paymentkit import RefundRecorder, jp_checkout, junglepay
from tests.concurrency import race
from tests.factories import UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("attempt", range(3))
def test_two_withdrawals_at_once_ask_the_gateway_for_one_refund(attempt, monkeypatch):
    # given: a paid subscription, and a gateway that counts the refunds asked of it
    jp = junglepay()
    user = UserFactory()
    checkout = jp_checkout(jp, user=user, customer_email=user.email)
    services.activate_checkout(checkout=checkout)
    subscription = Subscription.objects.get(user=user)
    asked = []
    monkeypatch.setattr(refunds, "gateway_for", lambda config: RefundRecorder(asked))

    # when: the buyer's two tabs withdraw at the same instant
    errors = race(
        lambda: refunds.withdraw(subscription=subscription),
        lambda: refunds.withdraw(subscription=subscription),
    )

    # then: one refund request, one refund asked
    assert errors == []
    assert RefundRequest.objects.count() == 1
    assert asked == [(checkout.gateway_transaction_id, checkout.total_cents)]
