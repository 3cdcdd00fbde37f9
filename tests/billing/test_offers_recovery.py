"""Recovery of unpaid PIX (billing.services.offers, sweep): reminders by the sweep, a link that reopens, unsubscribe, recovered sales."""

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from billing.models import Checkout, ReminderOptOut
from billing.services import activate_checkout, create_checkout, reopen_checkout, sweep_subscriptions
from tests.billing.paymentkit import sandbox
from tests.factories import PlanFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _steps(settings):
    settings.CHECKOUT_RECOVERY_MINUTES = (30, 1440)


def unpaid(email="ana@example.com", created=None, *, now, **kwargs):
    plan = kwargs.pop("plan", None) or PlanFactory(price_cents=2990)
    return create_checkout(
        plan=plan, customer_name="Ana", customer_email=email, customer_document="52998224725", customer_phone="11987654321",
        now=created or now, **kwargs,
    )


def sweep(at, capture):
    with capture(execute=True):
        return sweep_subscriptions(now=at)


def test_a_reminder_goes_after_each_step_once_and_stops_when_paid(django_capture_on_commit_callbacks, now):
    checkout = unpaid(now=now)

    assert sweep(now + timedelta(minutes=29), django_capture_on_commit_callbacks).reminders_sent == 0
    assert sweep(now + timedelta(minutes=31), django_capture_on_commit_callbacks).reminders_sent == 1
    assert sweep(now + timedelta(minutes=35), django_capture_on_commit_callbacks).reminders_sent == 0  # never twice
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["ana@example.com"]
    assert f"/checkout/pay/{checkout.public_id}/" in mail.outbox[0].body

    activate_checkout(checkout=checkout, now=now + timedelta(hours=2))
    assert sweep(now + timedelta(minutes=1441), django_capture_on_commit_callbacks).reminders_sent == 0
    checkout.refresh_from_db()
    assert checkout.is_recovered  # paid after a reminder


def test_the_second_reminder_goes_after_a_day_even_when_the_pix_expired(django_capture_on_commit_callbacks, now):
    checkout = unpaid(now=now)
    sweep(now + timedelta(minutes=31), django_capture_on_commit_callbacks)

    result = sweep(now + timedelta(minutes=1441), django_capture_on_commit_callbacks)

    checkout.refresh_from_db()
    assert result.reminders_sent == 1 and checkout.recovery_reminders_sent == 2
    assert checkout.status == Checkout.Status.EXPIRED  # expired by the same sweep: the link reopens it
    assert len(mail.outbox) == 2


def test_a_checkout_past_both_steps_at_once_gets_only_the_later_reminder(django_capture_on_commit_callbacks, now):
    checkout = unpaid(now=now)

    result = sweep(now + timedelta(minutes=1441), django_capture_on_commit_callbacks)

    checkout.refresh_from_db()
    assert result.reminders_sent == 1 and checkout.recovery_reminders_sent == 2 and len(mail.outbox) == 1


def test_no_reminder_for_a_customer_who_bought_since_or_for_a_free_trial(django_capture_on_commit_callbacks, now):
    plan = PlanFactory(price_cents=2990)
    unpaid(plan=plan, now=now)
    bought = unpaid(plan=plan, created=now + timedelta(minutes=5), now=now)
    activate_checkout(checkout=bought, now=now + timedelta(minutes=6))
    trial_plan = PlanFactory(trial_days=7)
    trial = create_checkout(plan=trial_plan, customer_name="Bia", customer_email="bia@example.com", trial=True, now=now)

    result = sweep(now + timedelta(minutes=40), django_capture_on_commit_callbacks)

    assert result.reminders_sent == 0 and not mail.outbox
    assert Checkout.objects.get(pk=trial.pk).recovery_reminders_sent == 0


def test_the_reminder_is_in_the_recipients_language(django_capture_on_commit_callbacks, now):
    UserFactory(email="ana@example.com", language="en")
    unpaid(email="ana@example.com", now=now)
    unpaid(email="bia@example.com", now=now)

    sweep(now + timedelta(minutes=31), django_capture_on_commit_callbacks)

    bodies = {m.to[0]: m.body for m in mail.outbox}
    # Pinned by the greeting, already in both catalogues (the new strings reach pt-BR with the catalogue update).
    assert bodies["ana@example.com"].startswith("Hello Ana,")
    assert bodies["bia@example.com"].startswith("Olá, Ana,")


def test_the_unsubscribe_link_works_and_stops_the_reminders(client, django_capture_on_commit_callbacks, now):
    unpaid(now=now)
    sweep(now + timedelta(minutes=31), django_capture_on_commit_callbacks)
    link = re.search(r"https?://\S+/checkout/reminders/unsubscribe/\S+/", mail.outbox[0].body).group(0)
    assert mail.outbox[0].extra_headers["List-Unsubscribe"] == f"<{link}>"
    path = link.split("://", 1)[1].split("/", 1)[1]

    asked = client.get("/" + path)
    assert asked.status_code == 200 and not ReminderOptOut.objects.exists()  # a GET (a mail scanner) changes nothing
    done = client.post("/" + path)
    assert done.status_code == 200 and b'data-testid="unsubscribed"' in done.content
    assert ReminderOptOut.objects.filter(email="ana@example.com").exists()
    assert client.get("/checkout/reminders/unsubscribe/forged/").status_code == 404

    assert sweep(now + timedelta(minutes=1441), django_capture_on_commit_callbacks).reminders_sent == 0


@pytest.fixture
def gateway(settings):
    settings.DEBUG = False
    settings.SANDBOX_GATEWAY_ALLOWED = True
    return sandbox()


def test_the_reminder_link_reopens_an_expired_checkout_with_a_fresh_charge_at_the_same_price(client, gateway, django_capture_on_commit_callbacks, now):
    created = timezone.now() - timedelta(days=1, minutes=1)
    checkout = unpaid(created=created, now=now)
    old = client.post("/api/checkout/pix", {"checkout_id": str(checkout.public_id)}, content_type="application/json").json()
    assert "transaction_id" in old, old
    Checkout.objects.filter(pk=checkout.pk).update(pix_expires_at=timezone.now() - timedelta(minutes=1))
    sweep(timezone.now(), django_capture_on_commit_callbacks)
    checkout.refresh_from_db()
    assert checkout.status == Checkout.Status.EXPIRED and checkout.recovery_reminders_sent == 2

    page = client.get(f"/checkout/pay/{checkout.public_id}/", follow=True)
    assert b'data-testid="reopen-checkout"' in page.content
    reopened = client.post(f"/checkout/pay/{checkout.public_id}/reopen/")
    assert reopened.status_code == 302 and f"checkout={checkout.public_id}" in reopened["Location"]
    sweep(timezone.now(), django_capture_on_commit_callbacks)  # not expired again before its fresh PIX
    fresh = client.post("/api/checkout/pix", {"checkout_id": str(checkout.public_id)}, content_type="application/json").json()

    checkout.refresh_from_db()
    assert checkout.status == Checkout.Status.PENDING
    assert fresh["transaction_id"] != old["transaction_id"] and fresh["total_amount"] == old["total_amount"] == 2990
    assert checkout.previous_charges.filter(transaction_id=old["transaction_id"]).exists()  # a late payment of it still counts


def test_a_checkout_without_a_reminder_or_already_paid_is_not_reopened(now):
    from billing.exceptions import CheckoutNotPayable

    checkout = unpaid(now=now)
    Checkout.objects.filter(pk=checkout.pk).update(status=Checkout.Status.EXPIRED)
    with pytest.raises(CheckoutNotPayable):
        reopen_checkout(checkout_id=checkout.public_id, now=now)
