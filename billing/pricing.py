"""
The one pricing rule of a checkout: the plan as sold, the order bumps, an
upgrade's credit and a coupon's discount. `create_checkout` and the sweep's
renewals both price through `price_checkout`; the checkout row stores each
part (and a CheckConstraint checks they add up).
"""

from __future__ import annotations

from dataclasses import dataclass

from billing.models import Coupon


@dataclass(frozen=True)
class Price:
    plan_price_cents: int
    bumps_cents: int
    credit_cents: int
    discount_cents: int

    @property
    def plan_line_cents(self) -> int:
        """The plan's line as charged: credit and discount lower it, never below zero, never the bumps."""
        return self.plan_price_cents - self.credit_cents - self.discount_cents

    @property
    def total_cents(self) -> int:
        return self.plan_line_cents + self.bumps_cents


def price_checkout(
    *, plan_price_cents: int, bumps_cents: int = 0, credit_cents: int = 0, coupon_kind: str | None = None, coupon_value: int = 0
) -> Price:
    """
    Credit first (an upgrade's unused value, at most the plan's price), then
    the coupon's discount on what is left of the plan line
    (Coupon.discount_for: never more than it).
    """
    credit = max(0, min(int(credit_cents), plan_price_cents))
    discount = 0
    if coupon_kind:
        discount = Coupon.discount_for(kind=coupon_kind, value=coupon_value, price_cents=plan_price_cents - credit)
    return Price(plan_price_cents=plan_price_cents, bumps_cents=bumps_cents, credit_cents=credit, discount_cents=discount)
