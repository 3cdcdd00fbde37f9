"""
The status cache of waiting checkout pages (billing.checkout_status): every change of a field
it holds goes through its one helper, so no path can forget to rewrite the entry.
"""

import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from accounts.services import confirm_email
from billing.checkout_status import FIELDS, cached_status, remember_status
from billing.models import Checkout
from billing.services import activate_checkout
from legal.services import delete_account
from tests.factories import CheckoutFactory, UserFactory

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def test_deleting_an_account_rewrites_the_cached_status_of_its_canceled_checkouts(django_capture_on_commit_callbacks):
    # given: a pending checkout whose page is polling (its entry cached)
    user = UserFactory()
    checkout = CheckoutFactory(user=user, customer_email=user.email)
    remember_status(checkout)
    assert cached_status(checkout.public_id)["status"] == "pending"

    # when: the buyer deletes the account (its unpaid checkouts are canceled)
    with django_capture_on_commit_callbacks(execute=True):
        delete_account(user=user, password="correct-horse-battery")

    # then: the page sees it at once, not after the cache's TTL
    assert cached_status(checkout.public_id)["status"] == Checkout.Status.CANCELED


def test_a_claimed_guest_payment_keeps_when_the_money_arrived_in_the_cache(django_capture_on_commit_callbacks):
    # given: a guest payment that waited for its e-mail's confirmation, its entry cached
    paid_at = timezone.now() - timedelta(days=2)
    owner = UserFactory(email="ana@example.com", email_confirmed_at=None)
    checkout = CheckoutFactory(customer_email=owner.email)
    with django_capture_on_commit_callbacks(execute=True):
        assert activate_checkout(checkout=checkout, paid_at=paid_at, now=paid_at) is None
    entry_before = cached_status(checkout.public_id)

    # when: the mailbox owner confirms (the payment is claimed now)
    with django_capture_on_commit_callbacks(execute=True):
        confirm_email(user=owner)

    # then: the entry names the owner, and the time the money came, not the claim's
    entry = cached_status(checkout.public_id)
    assert entry["user_id"] == owner.pk and entry["paid_at"] == entry_before["paid_at"]


SERVICE_SOURCES = [
    path
    for folder in ("billing", "accounts", "legal", "integrations")
    for path in (ROOT / folder).rglob("*.py")
    if "migrations" not in path.parts and path.name not in ("checkout_status.py", "demo.py")
]
CACHED = {"status", "total_cents", "paid_at", "user", "user_id"}
assert set(FIELDS) - {"public_id"} <= CACHED


def test_no_code_writes_a_field_of_the_status_cache_on_a_checkout_but_through_its_helpers():
    offenders = []
    for path in SERVICE_SOURCES:
        text = path.read_text()
        for match in re.finditer(r"checkout\w*\.save\(\s*update_fields=(\[[^\]]*\]|\w+)", text):
            if CACHED & set(re.findall(r'"(\w+)"', match.group(1))):
                offenders.append(f"{path.relative_to(ROOT)}: {match.group(0)[:80]}")
        for match in re.finditer(r"\.update\(([^()]*(\([^()]*\))?)*\)", text):
            call = match.group(0)
            if re.search(r"\bstatus=(Checkout\.Status|C)\.|\bpaid_at=|\btotal_cents=", call):
                offenders.append(f"{path.relative_to(ROOT)}: {call[:80]}")
    assert offenders == [], "use billing.checkout_status.save_checkout / update_checkouts"
