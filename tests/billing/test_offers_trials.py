"""Free trials paid by PIX (billing.services.offers, checkouts, sweep): trialing at once, one per person, first charge like a renewal, no grace."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from billing.access import user_has_access
from billing.exceptions import TrialNotAvailable
from billing.models import Checkout, Coupon, Subscription
from billing.services import activate_checkout, cancel_subscription, create_checkout, settle_free_checkout, sweep_subscriptions
from tests.billing.paymentkit import sandbox
from tests.factories import PlanFactory, UserFactory

pytestmark = pytest.mark.django_db
VALID = {"payment_method": "pix", "order_bump_ids": [], "name": "Ana Souza", "email": "ana@example.com", "cpf": "529.982.247-25", "phone": "(11) 98765-4321", "birth_date": "1990-05-20"}


def start_trial(plan, *, email="ana@example.com", document="52998224725", user=None, now):
    user = user or UserFactory(email=email)
    checkout = create_checkout(
        plan=plan, customer_name="Ana", customer_email=email, customer_document=document, user=user, trial=True, now=now
    )
    settle_free_checkout(checkout=checkout, now=now)
    return Subscription.objects.get(checkouts=checkout), Checkout.objects.get(pk=checkout.pk)


def test_a_first_time_subscriber_starts_trialing_at_once_with_a_zero_checkout_and_access(now):
    plan = PlanFactory(price_cents=2990, duration_days=30, trial_days=7)

    subscription, checkout = start_trial(plan, now=now)

    assert checkout.status == Checkout.Status.PAID and checkout.total_cents == 0 and checkout.is_trial
    assert checkout.gateway is None and checkout.plan_duration_days == 7
    assert subscription.status == Subscription.Status.TRIALING
    assert subscription.end_date == now + timedelta(days=7)
    assert user_has_access(subscription.user, now=now + timedelta(days=6))
    assert not user_has_access(subscription.user, now=now + timedelta(days=7, seconds=1))  # no grace for a trial


def test_a_second_trial_is_refused_by_email_and_by_cpf_offering_the_paid_plan(now):
    plan = PlanFactory(price_cents=2990, trial_days=7)
    start_trial(plan, now=now)

    with pytest.raises(TrialNotAvailable) as by_email:
        create_checkout(plan=plan, customer_name="Ana", customer_email="ANA@example.com", customer_document="11144477735", trial=True, now=now)
    with pytest.raises(TrialNotAvailable):
        create_checkout(plan=plan, customer_name="Ana", customer_email="other@example.com", customer_document="529.982.247-25", trial=True, now=now)

    assert "R$ 29,90" in by_email.value.message
    paid = create_checkout(plan=plan, customer_name="Ana", customer_email="other@example.com", customer_document="52998224725", trial=False, now=now)
    assert paid.total_cents == 2990 and not paid.is_trial


def test_a_logged_in_account_cannot_start_a_second_trial_by_typing_another_email_and_cpf(now):
    plan = PlanFactory(price_cents=2990, trial_days=7)
    _subscription, trial = start_trial(plan, now=now)

    with pytest.raises(TrialNotAvailable):
        create_checkout(
            plan=plan, customer_name="Ana", customer_email="fresh@example.com", customer_document="11144477735",
            user=trial.user, trial=True, now=now,
        )


def test_the_first_charge_is_issued_like_a_renewal_notice_days_before_the_trial_ends_and_emailed(settings, django_capture_on_commit_callbacks, now):
    settings.RENEWAL_NOTICE_DAYS = 3
    plan = PlanFactory(price_cents=2990, duration_days=30, trial_days=7)
    subscription, _ = start_trial(plan, user=UserFactory(email="ana@example.com", language="en"), now=now)

    sweep_subscriptions(now=now + timedelta(days=3))
    assert not Checkout.objects.filter(purpose=Checkout.Purpose.RENEWAL).exists()
    with django_capture_on_commit_callbacks(execute=True):
        sweep_subscriptions(now=now + timedelta(days=4, seconds=1))

    charge = Checkout.objects.get(purpose=Checkout.Purpose.RENEWAL)
    assert charge.total_cents == 2990 and charge.plan_duration_days == 30
    assert len(mail.outbox) == 1 and str(charge.public_id) in mail.outbox[0].body
    assert mail.outbox[0].subject == "Your free trial ends soon" and "R$ 29,90" in mail.outbox[0].body

    activate_checkout(checkout=charge, now=now + timedelta(days=5))
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.ACTIVE
    assert subscription.end_date == now + timedelta(days=7 + 30)  # paid in the trial: from the trial's end


def test_a_trial_unpaid_at_its_end_expires_with_no_grace(now):
    plan = PlanFactory(trial_days=7)
    subscription, _ = start_trial(plan, now=now)
    sweep_subscriptions(now=now + timedelta(days=5))

    result = sweep_subscriptions(now=now + timedelta(days=7, minutes=1))

    subscription.refresh_from_db()
    assert result.trials_ended == 1
    assert subscription.status == Subscription.Status.EXPIRED and subscription.last_reason == Subscription.Reason.TRIAL_ENDED
    assert Checkout.objects.get(purpose=Checkout.Purpose.RENEWAL).status == Checkout.Status.EXPIRED


def test_canceling_during_the_trial_ends_it_at_the_trial_end_with_no_charge(now):
    plan = PlanFactory(trial_days=7)
    subscription, _ = start_trial(plan, now=now)
    sweep_subscriptions(now=now + timedelta(days=5))  # the first charge was issued

    cancel_subscription(subscription=subscription, now=now + timedelta(days=5, hours=1))
    sweep_subscriptions(now=now + timedelta(days=7, minutes=1))

    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.CANCELED
    assert not Checkout.objects.filter(purpose=Checkout.Purpose.RENEWAL, status=Checkout.Status.PENDING).exists()
    assert not user_has_access(subscription.user, now=now + timedelta(days=7, minutes=2))


def test_a_canceled_trial_keeps_access_until_the_trial_end(now):
    plan = PlanFactory(trial_days=7)
    subscription, _ = start_trial(plan, now=now)
    cancel_subscription(subscription=subscription, now=now + timedelta(days=1))
    assert user_has_access(subscription.user, now=now + timedelta(days=6))


def test_a_coupon_on_a_trial_plan_sells_the_paid_plan_instead_of_the_trial(now):
    plan = PlanFactory(price_cents=2000, trial_days=7)
    Coupon.objects.create(code="METADE", kind=Coupon.Kind.PERCENT, value=50, starts_at=now - timedelta(days=1))

    checkout = create_checkout(plan=plan, customer_name="Ana", customer_email="ana@example.com", coupon_code="METADE", trial=True, now=now)

    assert not checkout.is_trial and checkout.total_cents == 1000


@pytest.fixture
def gateway(settings):
    settings.DEBUG = False
    settings.SANDBOX_GATEWAY_ALLOWED = True
    return sandbox()


def test_the_api_answers_a_trial_with_total_0_and_paid_and_lists_trial_days(api_client, gateway):
    plan = PlanFactory(price_cents=2990, trial_days=7)

    listed = api_client.get("/api/plans").json()["results"]
    response = api_client.post("/api/checkout/process", {**VALID, "plan_id": plan.pk}, format="json")
    again = api_client.post("/api/checkout/process", {**VALID, "plan_id": plan.pk}, format="json")
    pay_now = api_client.post("/api/checkout/process", {**VALID, "plan_id": plan.pk, "trial": False}, format="json")

    assert [p["trial_days"] for p in listed] == [7]
    assert response.status_code == 201, response.content
    assert response.json()["total_amount"] == 0 and response.json()["status"] == "paid"
    assert again.status_code == 409 and again.json()["error"]["code"] == "trial_already_used"
    assert pay_now.status_code == 201 and pay_now.json()["total_amount"] == 2990 and pay_now.json()["status"] == "pending"


def test_the_checkout_page_of_a_trial_plan_says_what_is_free_and_what_follows(client):
    plan = PlanFactory(price_cents=2990, trial_days=7)
    response = client.get(f"/checkout/{plan.pk}/")
    assert response.status_code == 200 and b'data-testid="trial-offer"' in response.content


def test_the_account_page_shows_the_trial(client, now):
    plan = PlanFactory(trial_days=7)
    subscription, _ = start_trial(plan, now=timezone.now())
    client.force_login(subscription.user)
    response = client.get("/account/")
    assert b'data-testid="trialing"' in response.content
