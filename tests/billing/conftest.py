"""Fixtures shared by the billing tests."""

import pytest

from tests.billing.cardkit import card_junglepay  # noqa: F401 - a fixture, shared by the card tests
from tests.factories import PlanFactory


@pytest.fixture
def monthly():
    return PlanFactory(name="Mensal", price_cents=2990, duration_days=30)


@pytest.fixture
def quarterly():
    return PlanFactory(name="Trimestral", price_cents=7990, duration_days=90)
