"""billing.services.marketplace: a marketplace (Dias) payment applied through record_marketplace_payment."""

import pytest

from billing.gateways import ChargeStatus
from billing.models import (
    Subscription,
    UnclaimedMarketplacePayment,
)
from billing.services import record_marketplace_payment
from tests.billing.paymentkit import dias
from tests.factories import PlanFactory, UserFactory

pytestmark = pytest.mark.django_db


EMAIL = "carla@example.com"  # the payer of the recorded Dias payloads


def test_a_marketplace_payment_to_a_confirmed_account_gives_access_at_once():
    dias()
    PlanFactory(price_cents=2990)
    user = UserFactory(email=EMAIL)

    subscription = record_marketplace_payment(external_id="DM-1", status=ChargeStatus.PAID, amount_cents=2990, email=EMAIL)

    assert subscription.user == user and subscription.status == Subscription.Status.ACTIVE
    assert not UnclaimedMarketplacePayment.objects.exists()
