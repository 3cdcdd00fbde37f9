"""Coupons (billing.services.offers): server-side discount on the plan line, uses counted when paid, API, page, admin, command."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from billing.exceptions import CheckoutNotPayable, CouponNotFound, InvalidInput
from billing.models import Checkout, Coupon, Subscription
from billing.services import (
    activate_checkout,
    create_checkout,
    create_coupon,
    fail_checkout,
    issue_pix_charge,
    quote_coupon,
    reopen_checkout,
    sweep_subscriptions,
)
from tests.billing.paymentkit import sandbox
from tests.factories import OrderBumpFactory, PlanFactory, UserFactory

pytestmark = pytest.mark.django_db
VALID = {"payment_method": "pix", "order_bump_ids": [], "name": "Ana Souza", "email": "ana@example.com", "cpf": "529.982.247-25", "phone": "(11) 98765-4321", "birth_date": "1990-05-20"}


def coupon(code="BEMVINDO", kind=Coupon.Kind.PERCENT, value=10, *, now, **kwargs):
    kwargs.setdefault("starts_at", now - timedelta(days=1))
    plans = kwargs.pop("plans", [])
    made = Coupon.objects.create(code=code, kind=kind, value=value, **kwargs)
    made.plans.set(plans)
    return made


def buy(plan, code, email="ana@example.com", document="52998224725", *, now, **kwargs):
    return create_checkout(
        plan=plan, customer_name="Ana", customer_email=email, customer_document=document, coupon_code=code, now=now, **kwargs
    )


@pytest.fixture
def gateway(settings):
    settings.DEBUG = False
    settings.SANDBOX_GATEWAY_ALLOWED = True
    return sandbox()


# --- the discount ---------------------------------------------------------


def test_a_percent_coupon_lowers_the_plan_line_only_and_the_items_add_up(now):
    plan = PlanFactory(price_cents=2990)
    bump = OrderBumpFactory(price_cents=990)
    coupon(value=10, now=now)

    checkout = buy(plan, "bemvindo", order_bump_ids=[bump.pk], now=now)

    assert checkout.coupon.code == "BEMVINDO"
    assert checkout.discount_cents == 299  # 10% of 29,90 rounded half up; the bump is never discounted
    assert checkout.total_cents == 2990 + 990 - 299
    assert [item["unit_price_cents"] for item in checkout.items] == [2691, 990]
    assert sum(i["unit_price_cents"] * i["quantity"] for i in checkout.items) == checkout.total_cents


def test_an_amount_coupon_larger_than_the_plan_never_takes_the_total_below_the_bumps(now):
    plan = PlanFactory(price_cents=2990)
    bump = OrderBumpFactory(price_cents=990)
    coupon(kind=Coupon.Kind.AMOUNT, value=5000, now=now)

    checkout = buy(plan, "BEMVINDO", order_bump_ids=[bump.pk], now=now)

    assert checkout.discount_cents == 2990
    assert checkout.total_cents == 990


def test_the_discount_rule_rounds_half_up_and_caps_at_the_price():
    assert Coupon.discount_for(kind=Coupon.Kind.PERCENT, value=15, price_cents=2990) == 449  # 448.5 → 449
    assert Coupon.discount_for(kind=Coupon.Kind.PERCENT, value=100, price_cents=2990) == 2990
    assert Coupon.discount_for(kind=Coupon.Kind.AMOUNT, value=9999, price_cents=100) == 100


def test_the_database_refuses_a_discount_that_reaches_into_the_bumps():
    from django.db import IntegrityError, transaction

    plan = PlanFactory(price_cents=1000)
    with pytest.raises(IntegrityError), transaction.atomic():
        Checkout.objects.create(
            plan=plan, plan_price_cents=1000, plan_duration_days=30, bumps_cents=990, discount_cents=1500,
            total_cents=490, customer_name="x", customer_email="x@example.com",
        )


@pytest.mark.parametrize(
    ("setup", "code"),
    [
        (lambda plan, now: coupon(ends_at=now - timedelta(minutes=1), starts_at=now - timedelta(days=2), now=now), "coupon_expired"),
        (lambda plan, now: coupon(starts_at=now + timedelta(days=1), now=now), "coupon_not_started"),
        (lambda plan, now: coupon(plans=[PlanFactory()], now=now), "coupon_not_for_plan"),
        (lambda plan, now: coupon(max_uses=1, uses=1, now=now), "coupon_used_up"),
    ],
)
def test_a_coupon_that_does_not_apply_is_refused_naming_the_coupon_field(setup, code, now):
    plan = PlanFactory()
    setup(plan, now)

    with pytest.raises(InvalidInput) as error:
        buy(plan, "BEMVINDO", now=now)

    assert error.value.code == code and "coupon" in error.value.fields
    assert not Checkout.objects.exists()


def test_an_unknown_coupon_is_not_found(now):
    with pytest.raises(CouponNotFound):
        buy(PlanFactory(), "NOPE", now=now)


def test_a_new_subscribers_only_coupon_is_refused_to_a_past_buyer_by_email_and_by_cpf(now):
    plan = PlanFactory()
    coupon(new_subscribers_only=True, now=now)
    earlier = create_checkout(plan=plan, customer_name="Ana", customer_email="old@example.com", customer_document="52998224725", now=now)
    activate_checkout(checkout=earlier, now=now)

    with pytest.raises(InvalidInput) as by_email:
        buy(plan, "BEMVINDO", email="OLD@example.com", document="", now=now)
    with pytest.raises(InvalidInput) as by_cpf:
        buy(plan, "BEMVINDO", email="other@example.com", document="529.982.247-25", now=now)

    assert by_email.value.code == by_cpf.value.code == "coupon_new_subscribers_only"
    assert buy(plan, "BEMVINDO", email="new@example.com", document="11144477735", now=now).discount_cents > 0


def _paid_subscriber(*, now):
    """A logged-in account that already paid (its own e-mail and CPF)."""
    user = UserFactory(email="sub@example.com")
    earlier = create_checkout(
        plan=PlanFactory(), customer_name="Ana", customer_email=user.email, customer_document="52998224725", user=user, now=now
    )
    activate_checkout(checkout=earlier, now=now)
    return user


def test_a_new_subscribers_only_coupon_is_refused_to_a_subscriber_typing_another_email_and_cpf(now):
    plan = PlanFactory()
    coupon(new_subscribers_only=True, now=now)
    user = _paid_subscriber(now=now)

    with pytest.raises(InvalidInput) as error:
        buy(plan, "BEMVINDO", email="fresh@example.com", document="11144477735", user=user, now=now)

    assert error.value.code == "coupon_new_subscribers_only"


def test_the_coupon_check_refuses_a_new_subscribers_only_coupon_to_a_logged_in_subscriber(api_client, now):
    plan = PlanFactory()
    coupon(new_subscribers_only=True, now=now)
    api_client.force_login(_paid_subscriber(now=now))

    response = api_client.get(f"/api/coupons/BEMVINDO?plan_id={plan.pk}&email=fresh@example.com")

    assert response.status_code == 400 and response.json()["error"]["code"] == "coupon_new_subscribers_only"


# --- uses -----------------------------------------------------------------


def test_a_use_is_counted_when_the_checkout_is_paid_not_when_it_is_created(now):
    plan = PlanFactory()
    made = coupon(now=now)
    checkout = buy(plan, "BEMVINDO", now=now)
    made.refresh_from_db()
    assert made.uses == 0

    activate_checkout(checkout=checkout, now=now)
    activate_checkout(checkout=checkout, now=now)  # a duplicate postback counts nothing more

    made.refresh_from_db()
    assert made.uses == 1


def test_a_pending_checkout_holds_the_last_use_until_it_expires_unpaid(now):
    plan = PlanFactory()
    coupon(max_uses=1, now=now)
    first = buy(plan, "BEMVINDO", email="a@example.com", now=now)

    with pytest.raises(InvalidInput) as error:
        buy(plan, "BEMVINDO", email="b@example.com", now=now)
    assert error.value.code == "coupon_used_up"

    fail_checkout(checkout=first, status=Checkout.Status.EXPIRED, now=now)
    assert buy(plan, "BEMVINDO", email="b@example.com", now=now).discount_cents > 0


def test_a_checkout_paid_late_after_its_use_was_taken_keeps_the_price_it_was_shown(now):
    plan = PlanFactory(price_cents=2990)
    made = coupon(max_uses=1, now=now)
    first = buy(plan, "BEMVINDO", email="a@example.com", now=now)
    sweep_subscriptions(now=now + timedelta(days=2))  # unpaid a day: expired, its use released
    second = buy(plan, "BEMVINDO", email="b@example.com", now=now)
    activate_checkout(checkout=second, now=now)

    activate_checkout(checkout=first, now=now + timedelta(days=2))  # the first PIX paid late after all

    first.refresh_from_db()
    made.refresh_from_db()
    assert first.status == Checkout.Status.PAID and first.total_cents == 2691 and first.is_late
    assert made.uses == 2  # both counted: money is never refused


def _expired_after_a_reminder(checkout, *, now):
    Checkout.objects.filter(pk=checkout.pk).update(
        status=Checkout.Status.EXPIRED, recovery_reminders_sent=1, pix_expires_at=now - timedelta(minutes=1)
    )
    return Checkout.objects.get(pk=checkout.pk)


def test_reopening_a_reminded_checkout_is_refused_once_another_buyer_took_the_coupons_last_use(now):
    # given: A's checkout expired (its hold lapsed), B took and paid the coupon's last use
    plan = PlanFactory()
    made = coupon(max_uses=1, now=now)
    first = _expired_after_a_reminder(buy(plan, "BEMVINDO", email="a@example.com", now=now), now=now)
    activate_checkout(checkout=buy(plan, "BEMVINDO", email="b@example.com", now=now), now=now)

    # when: A comes back from the reminder
    with pytest.raises(CheckoutNotPayable) as error:
        reopen_checkout(checkout_id=first.public_id, now=now + timedelta(hours=1))

    # then: not payable again at the coupon's price; the coupon sold once
    assert error.value.code == "coupon_used_up"
    first.refresh_from_db()
    made.refresh_from_db()
    assert first.status == Checkout.Status.EXPIRED and made.uses == 1


@pytest.mark.parametrize("change", [lambda now: {"is_active": False}, lambda now: {"ends_at": now + timedelta(minutes=30)}])
def test_reopening_a_reminded_checkout_is_refused_once_its_coupon_ended_or_was_deactivated(change, now):
    plan = PlanFactory()
    made = coupon(now=now)
    first = _expired_after_a_reminder(buy(plan, "BEMVINDO", now=now), now=now)
    Coupon.objects.filter(pk=made.pk).update(**change(now))

    with pytest.raises(CheckoutNotPayable):
        reopen_checkout(checkout_id=first.public_id, now=now + timedelta(hours=1))


def test_a_reopened_checkout_holds_the_coupons_last_use(now):
    plan = PlanFactory()
    coupon(max_uses=1, now=now)
    first = _expired_after_a_reminder(buy(plan, "BEMVINDO", email="a@example.com", now=now), now=now)

    reopen_checkout(checkout_id=first.public_id, now=now)

    with pytest.raises(InvalidInput) as error:
        buy(plan, "BEMVINDO", email="b@example.com", now=now)
    assert error.value.code == "coupon_used_up"


def test_a_fresh_pix_for_a_checkout_whose_pix_expired_is_refused_once_the_coupons_last_use_was_taken(gateway, now):
    # given: A's PIX expired (its hold lapsed) while still pending; B took and paid the last use
    plan = PlanFactory()
    coupon(max_uses=1, now=now)
    first = buy(plan, "BEMVINDO", email="a@example.com", customer_phone="11987654321", now=now)
    issue_pix_charge(checkout_id=first.public_id, now=now)
    Checkout.objects.filter(pk=first.pk).update(pix_expires_at=now - timedelta(minutes=1))
    activate_checkout(checkout=buy(plan, "BEMVINDO", email="b@example.com", now=now), now=now)
    charge = Checkout.objects.get(pk=first.pk).gateway_transaction_id

    # when: A asks for a fresh PIX
    with pytest.raises(CheckoutNotPayable) as error:
        issue_pix_charge(checkout_id=first.public_id, now=now + timedelta(minutes=5))

    # then: no fresh charge at the coupon's price
    assert error.value.code == "coupon_used_up"
    first.refresh_from_db()
    assert first.gateway_transaction_id == charge and not first.previous_charges.exists()


# --- renewals -------------------------------------------------------------


def _renewal_of(subscription):
    sweep_subscriptions(now=subscription.end_date - timedelta(days=1))
    return Checkout.objects.get(subscription=subscription, purpose=Checkout.Purpose.RENEWAL, status=Checkout.Status.PENDING)


def test_a_renewal_is_charged_at_the_plan_price_when_the_coupon_does_not_recur(now):
    plan = PlanFactory(price_cents=2990, duration_days=30)
    coupon(value=50, now=now)
    user = UserFactory(email="ana@example.com")
    subscription = activate_checkout(checkout=buy(plan, "BEMVINDO", user=user, now=now), now=now)

    renewal = _renewal_of(subscription)

    assert renewal.total_cents == 2990 and renewal.discount_cents == 0 and renewal.coupon is None


def test_a_coupon_that_recurs_once_discounts_one_renewal_then_the_plan_price(now):
    plan = PlanFactory(price_cents=2990, duration_days=30)
    coupon(value=50, renewals=1, now=now)
    user = UserFactory(email="ana@example.com")
    subscription = activate_checkout(checkout=buy(plan, "BEMVINDO", user=user, now=now), now=now)

    first_renewal = _renewal_of(subscription)
    assert first_renewal.total_cents == 1495 and first_renewal.discount_cents == 1495
    subscription = activate_checkout(checkout=first_renewal, now=subscription.end_date - timedelta(days=1))
    subscription.refresh_from_db()
    assert subscription.coupon_renewals_left == 0

    second_renewal = _renewal_of(subscription)
    assert second_renewal.total_cents == 2990 and second_renewal.coupon is None


def test_a_coupon_that_recurs_forever_discounts_every_renewal(now):
    plan = PlanFactory(price_cents=2990, duration_days=30)
    coupon(kind=Coupon.Kind.AMOUNT, value=1000, renewals=None, now=now)
    user = UserFactory(email="ana@example.com")
    subscription = activate_checkout(checkout=buy(plan, "BEMVINDO", user=user, now=now), now=now)
    for _ in range(2):
        renewal = _renewal_of(subscription)
        assert renewal.total_cents == 1990
        subscription = activate_checkout(checkout=renewal, now=subscription.end_date - timedelta(days=1))


# --- 100% coupon ----------------------------------------------------------


def test_a_100_percent_coupon_is_paid_at_once_without_a_gateway_charge(api_client, gateway, now):
    plan = PlanFactory(price_cents=2990)
    made = coupon(value=100, now=now)

    response = api_client.post("/api/checkout/process", {**VALID, "plan_id": plan.pk, "coupon": "bemvindo"}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["total_amount"] == 0 and body["discount_amount"] == 2990 and body["status"] == "paid"
    checkout = Checkout.objects.get(public_id=body["checkout_id"])
    assert checkout.gateway_transaction_id == "" and checkout.gateway is None
    made.refresh_from_db()
    assert made.uses == 1


# --- API ------------------------------------------------------------------


def test_the_coupon_api_quotes_the_discount_and_total_for_a_plan(api_client, now):
    plan = PlanFactory(price_cents=2990)
    coupon(value=10, now=now)

    response = api_client.get(f"/api/coupons/bemvindo?plan_id={plan.pk}")

    assert response.status_code == 200
    assert response.json() == {"code": "BEMVINDO", "kind": "percent", "value": 10, "discount_amount": 299, "total_amount": 2691}


def test_the_coupon_api_names_the_coupon_field_with_the_reason(api_client, now):
    plan = PlanFactory()
    coupon(plans=[PlanFactory()], now=now)

    unknown = api_client.get(f"/api/coupons/NOPE?plan_id={plan.pk}")
    other_plan = api_client.get(f"/api/coupons/BEMVINDO?plan_id={plan.pk}")

    assert unknown.status_code == 404 and "coupon" in unknown.json()["error"]["fields"]
    assert other_plan.status_code == 400
    assert other_plan.json()["error"]["code"] == "coupon_not_for_plan" and "coupon" in other_plan.json()["error"]["fields"]


def test_process_applies_the_coupon_on_the_server_and_answers_the_discount(api_client, gateway, now):
    plan = PlanFactory(price_cents=2990)
    coupon(kind=Coupon.Kind.AMOUNT, value=500, now=now)

    response = api_client.post(
        "/api/checkout/process",
        {**VALID, "plan_id": plan.pk, "coupon": "BemVindo", "birth_date": "1990-01-01", "discount_amount": 2990},
        format="json",
    )

    assert response.status_code == 201, response.content
    assert response.json()["total_amount"] == 2490 and response.json()["discount_amount"] == 500
    pix = api_client.post("/api/checkout/pix", {"checkout_id": response.json()["checkout_id"]}, format="json")
    assert pix.status_code == 200 and pix.json()["total_amount"] == 2490


def test_process_refuses_a_used_up_coupon_before_any_charge(api_client, gateway, now):
    plan = PlanFactory()
    coupon(max_uses=1, uses=1, now=now)

    response = api_client.post("/api/checkout/process", {**VALID, "plan_id": plan.pk, "coupon": "BEMVINDO"}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "coupon_used_up"
    assert not Checkout.objects.exists() and not Subscription.objects.exists()


# --- page, admin, command -------------------------------------------------


@pytest.mark.parametrize("param", ["cupom", "coupon"])
def test_a_campaign_link_prefills_the_coupon_field(client, param):
    plan = PlanFactory()

    response = client.get(f"/checkout/{plan.pk}/?{param}=BEMVINDO")

    assert response.status_code == 200
    assert b'id="id_coupon"' in response.content and b'value="BEMVINDO"' in response.content
    assert '"coupon": "BEMVINDO"' in response.content.decode()


def test_the_admin_creates_an_amount_coupon_typed_in_reais(admin_client, now):
    plan = PlanFactory()
    response = admin_client.post(
        "/admin/billing/coupon/add/",
        {
            "code": "natal", "kind": "amount", "percent": "", "amount": "10,50", "is_active": "on", "plans": [plan.pk],
            "starts_at_0": now.strftime("%Y-%m-%d"), "starts_at_1": "00:00:00", "ends_at_0": "", "ends_at_1": "",
            "max_uses": "5", "renewals": "0",
        },
    )

    assert response.status_code == 302, response.content.decode()[:3000]
    made = Coupon.objects.get()
    assert (made.code, made.kind, made.value, made.max_uses) == ("NATAL", "amount", 1050, 5)
    assert list(made.plans.all()) == [plan]


def test_the_create_coupon_command_prints_the_coupon(capsys):
    plan = PlanFactory()

    call_command("create_coupon", "black50", "--percent", "50", "--plans", str(plan.pk), "--max-uses", "100", "--new-only", "--ends", "2099-01-01")

    made = Coupon.objects.get(code="BLACK50")
    assert made.value == 50 and made.max_uses == 100 and made.new_subscribers_only and made.ends_at.year == 2099
    assert "BLACK50" in capsys.readouterr().out
    with pytest.raises(CommandError):
        call_command("create_coupon", "BLACK50", "--percent", "10")


def test_create_coupon_refuses_a_percent_above_100():
    with pytest.raises(InvalidInput):
        create_coupon(code="X", kind=Coupon.Kind.PERCENT, value=101)


def test_quote_coupon_ignores_case_and_spaces(now):
    plan = PlanFactory(price_cents=1000)
    coupon(value=25, now=now)
    assert quote_coupon(code="  bemVindo ", plan=plan, now=now).total_cents == 750


def test_the_migration_gives_earlier_checkouts_their_cpf_digest_so_new_only_sees_them(now):
    import importlib

    from django.apps import apps

    migration = importlib.import_module("billing.migrations.0009_offers")
    plan = PlanFactory()
    coupon(new_subscribers_only=True, now=now)
    earlier = create_checkout(plan=plan, customer_name="Ana", customer_email="old@example.com", customer_document="52998224725", now=now)
    activate_checkout(checkout=earlier, now=now)
    Checkout.objects.filter(pk=earlier.pk).update(customer_document_digest="")  # as before the migration

    migration.backfill_document_digests(apps, None)

    with pytest.raises(InvalidInput):
        buy(plan, "BEMVINDO", email="other@example.com", document="52998224725", now=now)
