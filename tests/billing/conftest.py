"""Fixtures shared by the billing tests."""

import pytest
from django.utils import timezone

from tests.billing.cardkit import card_junglepay  # noqa: F401 - a fixture, shared by the card tests
from tests.billing.paymentkit import JP, junglepay
from tests.factories import PlanFactory


@pytest.fixture
def now():
    """The test's one clock reading (whole seconds), read when the test starts: services take it as `now=`."""
    return timezone.now().replace(microsecond=0)


@pytest.fixture
def jp(settings, db):
    """JunglePay, the active gateway, its API at the fake address `JP` (mock it with `responses`)."""
    settings.JUNGLEPAY_API_URL = JP
    return junglepay()


@pytest.fixture
def monthly():
    return PlanFactory(name="Mensal", price_cents=2990, duration_days=30)


@pytest.fixture
def quarterly():
    return PlanFactory(name="Trimestral", price_cents=7990, duration_days=90)
