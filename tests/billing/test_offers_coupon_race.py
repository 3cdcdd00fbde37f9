"""Offers raced on PostgreSQL: twenty buyers for the last use of a "max 1" coupon; two sweeps sending reminders."""

import pytest
from django.utils import timezone

from billing.exceptions import InvalidInput
from billing.models import Checkout, Coupon
from billing.services import activate_checkout, create_checkout
from tests.concurrency import race
from tests.factories import PlanFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_twenty_buyers_racing_for_the_last_use_produce_exactly_one_discounted_paid_checkout():
    now = timezone.now()
    plan = PlanFactory(price_cents=2990)
    Coupon.objects.create(code="ULTIMO", kind=Coupon.Kind.PERCENT, value=50, max_uses=1, starts_at=now)

    def buyer(n):
        def go():
            checkout = create_checkout(
                plan=plan, customer_name=f"Buyer {n}", customer_email=f"buyer{n}@example.com", coupon_code="ultimo", now=now
            )
            activate_checkout(checkout=checkout, now=now)
        return go

    errors = race(*(buyer(n) for n in range(20)))

    assert len(errors) == 19 and all(isinstance(e, InvalidInput) and e.code == "coupon_used_up" for e in errors)
    paid = Checkout.objects.filter(status=Checkout.Status.PAID)
    assert paid.count() == 1 and paid.get().discount_cents == 1495
    assert Checkout.objects.count() == 1  # the others were told before any charge existed
    assert Coupon.objects.get().uses == 1


def test_two_sweeps_at_once_send_each_checkout_reminder_once(settings):
    from datetime import timedelta

    from django.core import mail

    from billing.services import sweep_subscriptions

    settings.CHECKOUT_RECOVERY_MINUTES = (30, 1440)
    now = timezone.now()
    plan = PlanFactory(price_cents=2990)
    for n in range(10):
        create_checkout(plan=plan, customer_name="A", customer_email=f"r{n}@example.com", now=now - timedelta(minutes=31))

    errors = race(lambda: sweep_subscriptions(now=now), lambda: sweep_subscriptions(now=now))

    assert errors == []
    assert list(Checkout.objects.values_list("recovery_reminders_sent", flat=True).distinct()) == [1]
    assert sorted(m.to[0] for m in mail.outbox) == sorted(f"r{n}@example.com" for n in range(10))


def test_two_trial_requests_at_once_for_the_same_cpf_start_one_trial():
    from billing.exceptions import TrialNotAvailable
    from billing.services import settle_free_checkout

    now = timezone.now()
    plan = PlanFactory(price_cents=2990, trial_days=7)

    def trial(n):
        def go():
            checkout = create_checkout(
                plan=plan, customer_name="A", customer_email=f"t{n}@example.com", customer_document="52998224725",
                trial=True, now=now,
            )
            settle_free_checkout(checkout=checkout, now=now)
        return go

    errors = race(*(trial(n) for n in range(5)))

    assert len(errors) == 4 and all(isinstance(e, TrialNotAvailable) for e in errors)
    assert Checkout.objects.filter(is_trial=True).count() == 1
