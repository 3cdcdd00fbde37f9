"""Issue 13: twenty buyers race for the last use of a "max 1" coupon, on PostgreSQL."""

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
