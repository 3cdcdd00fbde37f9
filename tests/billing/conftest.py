"""Fixtures shared by the billing tests."""

from tests.billing.cardkit import card_junglepay  # noqa: F401 - a fixture, shared by the card tests
