"""
Account deletion meeting money still on its way (contract §9.8): a payment that arrives after
the buyer deleted the account is kept and listed for a person to refund, never granted.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import User
from billing.access import user_has_access
from billing.audit import run_audit
from billing.gateways.junglepay import charge_from_transaction
from billing.models import Checkout, ReconciliationItem, Subscription
from billing.services import apply_charge, charge_card
from legal.services import delete_account
from tests.billing.cardkit import APPROVED, card_checkout
from tests.billing.paymentkit import jp_checkout, live_subscription_with_renewal, transaction
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"  # tests.factories.UserFactory's


def _paid(checkout, *, now):
    """The gateway's `paid` for the checkout's charge, applied as the webhook path does."""
    checkout.refresh_from_db()
    charge = charge_from_transaction(transaction(checkout, status="paid", externalRef=str(checkout.public_id)))
    return apply_charge(checkout=checkout, charge=charge, now=now)


def _assert_listed_not_granted(checkout, user):
    checkout.refresh_from_db()
    assert checkout.status == Checkout.Status.PAID and checkout.is_late and checkout.subscription is None
    item = ReconciliationItem.objects.get(kind=ReconciliationItem.Kind.VOIDED_CHARGE_PAID, checkout=checkout)
    assert item.amount_cents == checkout.total_cents and not item.resolved
    assert not Subscription.objects.live().exists()
    if user is not None:
        assert not user_has_access(User.objects.get(pk=user.pk))


def test_a_pix_paid_after_the_account_was_deleted_is_listed_for_a_refund_and_grants_nothing(jp):
    # given: a buyer with an unpaid PIX deletes the account
    now = timezone.now()
    user = UserFactory()
    checkout = jp_checkout(jp, user=user, customer_email=user.email)
    delete_account(user=user, password=PASSWORD, now=now)

    # when: the PIX is paid afterwards
    _paid(checkout, now=now + timedelta(minutes=5))

    # then: the money is recorded and listed; no period on the anonymised account
    _assert_listed_not_granted(checkout, user)
    assert not Subscription.objects.filter(user=user, status=Subscription.Status.ACTIVE).exists()
    assert run_audit(now=now + timedelta(hours=1)).violations == []  # contract §9 holds after it

def test_a_guest_pix_paid_after_the_account_was_deleted_creates_no_account_and_is_listed(jp):
    # given: a guest checkout of a confirmed account's e-mail, and the account deleted
    now = timezone.now()
    user = UserFactory()
    checkout = jp_checkout(jp, customer_email=user.email)
    delete_account(user=user, password=PASSWORD, now=now)
    accounts = User.objects.count()

    _paid(checkout, now=now + timedelta(minutes=5))

    _assert_listed_not_granted(checkout, None)
    assert User.objects.count() == accounts  # no account for the anonymous address
    assert run_audit(now=now + timedelta(hours=1)).violations == []  # contract §9 holds after it

def test_a_renewal_paid_after_the_account_was_deleted_is_listed_for_a_refund(jp):
    now = timezone.now()
    subscription, renewal = live_subscription_with_renewal(now=now)
    Checkout.objects.filter(pk=renewal.pk).update(gateway=jp, gateway_transaction_id="282")
    delete_account(user=subscription.user, password=PASSWORD, now=now)

    _paid(renewal, now=now + timedelta(minutes=5))

    _assert_listed_not_granted(renewal, subscription.user)
    subscription.refresh_from_db()
    assert (subscription.status, subscription.last_reason) == ("canceled", "account_deleted")


def test_deleting_the_account_forgets_the_saved_card_so_nothing_of_it_is_kept_or_charged(card_junglepay):
    user = UserFactory()
    checkout = card_checkout(user=user)
    charge_card(checkout_id=checkout.public_id, card_hash=APPROVED)
    assert Subscription.objects.get(user=user).card_id

    delete_account(user=user, password=PASSWORD)

    subscription = Subscription.objects.get(user=user)
    card = (subscription.card_gateway, subscription.card_id, subscription.card_brand, subscription.card_last_digits)
    assert card == (None, "", "", "")
    assert (subscription.card_exp_month, subscription.card_exp_year, subscription.auto_renew) == (None, None, False)
    checkout.refresh_from_db()
    assert (checkout.status, checkout.card_last_digits) == (Checkout.Status.PAID, "4242")  # the payment's record stays
