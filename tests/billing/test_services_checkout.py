
import pytest

from billing.models import (
    Checkout,
    Subscription,
)
from billing.services import (
    create_checkout,
)
from config.errors import DomainError
from tests.factories import OrderBumpFactory, PlanFactory, SubscriptionFactory, UserFactory

pytestmark = pytest.mark.django_db


def _checkout(plan, **kwargs):
    defaults = dict(plan=plan, customer_name="Ana Souza", customer_email="Ana@Example.com ")
    defaults.update(kwargs)
    return create_checkout(**defaults)


def test_it_computes_totals_on_the_server_and_snapshots_items():
    plan = PlanFactory(price_cents=2990)
    bump_a, bump_b = OrderBumpFactory(price_cents=990), OrderBumpFactory(price_cents=1500)

    checkout = _checkout(plan, order_bump_ids=[bump_a.pk, bump_b.pk, bump_a.pk], customer_document="529.982.247-25")

    assert (checkout.plan_price_cents, checkout.bumps_cents, checkout.total_cents) == (2990, 2490, 5480)
    assert checkout.status == Checkout.Status.PENDING
    assert sum(i["unit_price_cents"] * i["quantity"] for i in checkout.items) == checkout.total_cents
    assert [i["unit_price_cents"] for i in checkout.items] == [2990, 990, 1500]
    assert set(checkout.order_bumps.all()) == {bump_a, bump_b}
    checkout.refresh_from_db()
    assert checkout.customer_document == "52998224725"
    assert checkout.customer_email == "ana@example.com"


def test_it_refuses_an_inactive_plan():
    with pytest.raises(DomainError) as exc:
        _checkout(PlanFactory(is_active=False))
    assert "plan_id" in exc.value.fields
    assert not Checkout.objects.exists()


def test_it_refuses_a_method_the_plan_does_not_accept():
    with pytest.raises(DomainError) as exc:
        _checkout(PlanFactory(accepts_card=False), payment_method="card")
    assert exc.value.code == "method_not_accepted"
    assert "payment_method" in exc.value.fields


def test_it_refuses_an_inactive_order_bump():
    bump = OrderBumpFactory(is_active=False)
    with pytest.raises(DomainError) as exc:
        _checkout(PlanFactory(), order_bump_ids=[bump.pk])
    assert "order_bump_ids" in exc.value.fields


def test_credit_lowers_the_plan_line_and_never_goes_negative():
    plan = PlanFactory(price_cents=7990)
    sub = SubscriptionFactory()
    checkout = _checkout(plan, purpose=Checkout.Purpose.UPGRADE, subscription=sub, credit_cents=1993)
    assert checkout.total_cents == 5997
    assert checkout.items[0]["unit_price_cents"] == 5997

    capped = _checkout(plan, purpose=Checkout.Purpose.UPGRADE, subscription=sub, credit_cents=99999)
    assert capped.credit_cents == 7990 and capped.total_cents == 0


def test_a_new_checkout_of_a_known_user_opens_a_pending_subscription():
    user = UserFactory()
    checkout = _checkout(PlanFactory(), user=user)
    assert checkout.subscription.status == Subscription.Status.PENDING
    assert checkout.subscription.user == user


def test_a_renewal_may_continue_a_plan_no_longer_sold():
    sub = SubscriptionFactory(plan=PlanFactory(is_active=False))
    checkout = _checkout(sub.plan, purpose=Checkout.Purpose.RENEWAL, subscription=sub)
    assert checkout.purpose == Checkout.Purpose.RENEWAL


@pytest.mark.django_db
def test_a_discontinued_plan_is_not_sold_anew(client):
    plan = PlanFactory(is_active=False)

    assert client.get(f"/checkout/{plan.pk}/").status_code == 404
    new_sale = create_checkout(plan=PlanFactory(), customer_name="Ana", customer_email="ana@example.com")
    assert client.get(f"/checkout/{plan.pk}/?checkout={new_sale.public_id}").status_code == 404
