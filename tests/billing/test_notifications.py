"""
Billing's transactional e-mails (billing/notifications.py): each is sent once per event, after the change
commits, in the recipient's language, with an HTML part in the one layout and a plain-text part, both naming
the seller, neither showing a full CPF or card number. An SMTP failure is retried (EMAIL_RETRY).
"""

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend
from django.db import transaction
from django.utils import timezone

from billing import services
from billing.models import CardAttempt, Checkout, RefundRequest, Subscription
from billing.notifications import send_card_refused, send_refund_email_task
from tests.factories import CheckoutFactory, GatewayFactory, PlanFactory, SubscriptionFactory, UserFactory

pytestmark = pytest.mark.django_db

SELLER = "CreatorFlix Conteúdo Digital Ltda."
CPF = "52998224725"
FULL_CPF = re.compile(r"\b\d{3}\.?\d{3}\.?\d{3}-?\d{2}\b")
CARD_NUMBER = re.compile(r"\b(?:\d[ -]?){13,19}\b")


@pytest.fixture(autouse=True)
def seller(settings):
    settings.SELLER_NAME = SELLER
    settings.SELLER_DOCUMENT = "12345678000190"
    settings.SUPPORT_EMAIL = "suporte@creatorflix.example"


def sent(tag):
    return [message for message in mail.outbox if getattr(message, "tags", None) == [tag]]


def assert_well_formed(message):
    """Both parts, the layout, the seller in each, no full CPF or card number anywhere."""
    [(html, mimetype)] = message.alternatives
    assert mimetype == "text/html" and "<!doctype html>" in html
    for part in (message.subject, message.body, html):
        assert not FULL_CPF.search(part) and not CARD_NUMBER.search(part)
    for part in (message.body, html):
        assert SELLER in part and "12.345.678/0001-90" in part and "suporte@creatorflix.example" in part


def paid(django_capture_on_commit_callbacks, *, user, now, **fields):
    """A paid first purchase of `user`, its receipt sent; returns the checkout."""
    checkout = CheckoutFactory(user=user, customer_email=user.email, customer_document=CPF, **fields)
    with django_capture_on_commit_callbacks(execute=True):
        services.activate_checkout(checkout=checkout, paid_at=now, transaction_id=f"jp-{checkout.pk}", now=now)
    return Checkout.objects.get(pk=checkout.pk)


# --- cancellation -------------------------------------------------------------------------------


def test_a_cancel_at_period_end_emails_once_that_access_stays_until_the_end(django_capture_on_commit_callbacks):
    subscription = SubscriptionFactory(user=UserFactory(name="Ana"), plan=PlanFactory(name="Mensal"))

    for _twice in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            services.cancel_subscription(subscription=subscription)

    [message] = sent("cancellation")
    assert message.to == [subscription.user.email]
    assert message.subject == "Sua assinatura foi cancelada: acesso até o fim do período"
    assert "Ana," in message.body and "Mensal" in message.body and "/account/" in message.body
    assert_well_formed(message)


def test_the_admins_cancel_emails_that_access_ended_in_the_recipients_language(django_capture_on_commit_callbacks):
    subscription = SubscriptionFactory(user=UserFactory(language="en"))

    with django_capture_on_commit_callbacks(execute=True):
        services.cancel_subscription_now(subscription=subscription, reason="fraud check")

    [message] = sent("cancellation")
    assert message.subject == "Your subscription was canceled"
    assert "your access has ended" in message.body and "fraud check" not in message.body
    assert_well_formed(message)


def test_a_cancellation_rolled_back_emails_no_one(django_capture_on_commit_callbacks):
    subscription = SubscriptionFactory()

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError), transaction.atomic():
        services.cancel_subscription(subscription=subscription)
        raise RuntimeError("something later in the same transaction fails")

    assert sent("cancellation") == []


# --- refund and withdrawal ----------------------------------------------------------------------


def test_a_refund_emails_the_payer_once_with_the_amount_and_that_access_ended(django_capture_on_commit_callbacks):
    now = timezone.now()
    checkout = paid(django_capture_on_commit_callbacks, user=UserFactory(), now=now)

    for _twice in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            services.refund_checkout(checkout=checkout, now=now + timedelta(hours=1))

    [message] = sent("refund")
    assert message.to == [checkout.customer_email]
    assert message.subject == "Seu pagamento de R$ 29,90 foi reembolsado"
    assert "seu acesso à assinatura terminou" in message.body and "PIX" in message.body
    assert message.metadata == {"checkout_id": str(checkout.public_id)}
    assert_well_formed(message)


def test_a_chargeback_sends_no_refund_email(django_capture_on_commit_callbacks):
    now = timezone.now()
    checkout = paid(django_capture_on_commit_callbacks, user=UserFactory(), now=now)
    Checkout.objects.filter(pk=checkout.pk).update(gateway_status="chargedback")

    with django_capture_on_commit_callbacks(execute=True):
        services.refund_checkout(checkout=Checkout.objects.get(pk=checkout.pk), now=now)

    assert sent("refund") == []


def test_a_refund_after_the_account_was_deleted_emails_no_one(django_capture_on_commit_callbacks):
    now = timezone.now()
    user = UserFactory()
    checkout = paid(django_capture_on_commit_callbacks, user=user, now=now)
    with django_capture_on_commit_callbacks(execute=True):
        services.erase_customer_data(user=user, now=now)

    with django_capture_on_commit_callbacks(execute=True):
        services.refund_checkout(checkout=Checkout.objects.get(pk=checkout.pk), now=now)

    assert Checkout.objects.get(pk=checkout.pk).status == Checkout.Status.REFUNDED
    assert sent("refund") == []


def test_a_withdrawal_is_emailed_once_when_its_last_refund_is_confirmed(django_capture_on_commit_callbacks):
    # given: a first payment and an upgrade paid, then the buyer withdraws (two refunds pending)
    now = timezone.now()
    user = UserFactory(language="en")
    first = paid(django_capture_on_commit_callbacks, user=user, now=now)
    second = CheckoutFactory(
        user=user, customer_email=user.email, plan=first.plan, subscription=first.subscription,
        purpose=Checkout.Purpose.RENEWAL, total_cents=2990,
    )
    with django_capture_on_commit_callbacks(execute=True):
        services.activate_checkout(checkout=second, paid_at=now, now=now)
        services.withdraw_subscription(subscription=first.subscription, now=now + timedelta(hours=1))
    [one, two] = RefundRequest.objects.order_by("pk")

    # when: the refunds are confirmed one after the other (the second twice)
    with django_capture_on_commit_callbacks(execute=True):
        services.complete_refund_request(refund_request=one, now=now + timedelta(hours=2))
    assert sent("withdrawal") == [] and sent("refund") == []
    for _twice in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            services.complete_refund_request(refund_request=two, now=now + timedelta(hours=3))

    # then: one e-mail, for the whole amount, and no separate refund e-mails
    [message] = sent("withdrawal")
    assert message.subject == "Your withdrawal is complete: R$ 59,80 refunded"
    assert "everything you paid for it" in message.body
    assert sent("refund") == []
    assert_well_formed(message)


# --- the sweep: past due, expired ---------------------------------------------------------------


def test_a_subscription_gone_past_due_is_emailed_once_with_its_renewal_link(django_capture_on_commit_callbacks):
    now = timezone.now()
    subscription = SubscriptionFactory(start_date=now - timedelta(days=31), end_date=now - timedelta(minutes=1))
    renewal = CheckoutFactory(
        user=subscription.user, subscription=subscription, plan=subscription.plan, purpose=Checkout.Purpose.RENEWAL,
        customer_email=subscription.user.email,
    )
    Subscription.objects.filter(pk=subscription.pk).update(renewal_issued_for=subscription.end_date)

    for minutes in (0, 5):
        with django_capture_on_commit_callbacks(execute=True):
            services.sweep_subscriptions(now=now + timedelta(minutes=minutes))

    [message] = sent("past_due")
    assert message.subject == "Sua assinatura está aguardando pagamento"
    assert f"/checkout/pay/{renewal.public_id}/" in message.body
    assert_well_formed(message)


def test_a_past_due_subscription_whose_card_was_just_refused_gets_only_the_refusal(django_capture_on_commit_callbacks):
    now = timezone.now()
    subscription = SubscriptionFactory(start_date=now - timedelta(days=31), end_date=now - timedelta(minutes=1))
    renewal = CheckoutFactory(
        user=subscription.user, subscription=subscription, plan=subscription.plan, purpose=Checkout.Purpose.RENEWAL,
        payment_method=Checkout.Method.CARD,
    )
    CardAttempt.objects.create(
        checkout=renewal, subscription=subscription, kind=CardAttempt.Kind.RENEWAL, number=1, status=CardAttempt.Status.REFUSED,
        external_ref="renewal-1", amount_cents=renewal.total_cents, gateway=GatewayFactory(),
    )

    with django_capture_on_commit_callbacks(execute=True):
        result = services.sweep_subscriptions(now=now)

    assert result.past_due == 1 and sent("past_due") == []


def test_a_subscription_expired_after_grace_is_emailed_once(django_capture_on_commit_callbacks):
    now = timezone.now()
    subscription = SubscriptionFactory(
        user=UserFactory(language="en"), status=Subscription.Status.PAST_DUE,
        start_date=now - timedelta(days=40), end_date=now - timedelta(days=10),
    )

    for minutes in (0, 5):
        with django_capture_on_commit_callbacks(execute=True):
            services.sweep_subscriptions(now=now + timedelta(minutes=minutes))

    [message] = sent("expired")
    assert message.to == [subscription.user.email]
    assert message.subject == "Your subscription has ended" and "/plans/" in message.body
    assert_well_formed(message)


def test_a_free_trial_ended_unpaid_is_emailed_as_such(django_capture_on_commit_callbacks):
    now = timezone.now()
    SubscriptionFactory(status=Subscription.Status.TRIALING, start_date=now - timedelta(days=7), end_date=now - timedelta(minutes=1))

    with django_capture_on_commit_callbacks(execute=True):
        services.sweep_subscriptions(now=now)

    [message] = sent("expired")
    assert message.subject == "Seu período de teste grátis terminou"
    assert_well_formed(message)


def test_the_admins_expire_is_emailed(django_capture_on_commit_callbacks):
    subscription = SubscriptionFactory()

    with django_capture_on_commit_callbacks(execute=True):
        services.expire_subscription(subscription=subscription, reason="chargeback elsewhere")

    [message] = sent("expired")
    assert "nossa equipe" in message.body and "chargeback elsewhere" not in message.body
    assert_well_formed(message)


def test_the_admin_ending_a_never_paid_subscription_emails_no_one(django_capture_on_commit_callbacks):
    # given: two subscriptions still pending (their first PIX never paid): nothing to lose, nothing to tell
    canceled, expired = SubscriptionFactory(status=Subscription.Status.PENDING), SubscriptionFactory(status=Subscription.Status.PENDING)

    with django_capture_on_commit_callbacks(execute=True):
        services.cancel_subscription_now(subscription=canceled, reason="duplicate")
        services.expire_subscription(subscription=expired, reason="duplicate")

    assert (sent("cancellation"), sent("expired")) == ([], [])
    canceled.refresh_from_db()
    expired.refresh_from_db()
    assert (canceled.status, expired.status) == (Subscription.Status.CANCELED, Subscription.Status.EXPIRED)


# --- renewal paid, card refused -----------------------------------------------------------------


def test_a_paid_renewal_sends_exactly_one_email_its_receipt(django_capture_on_commit_callbacks):
    subscription = SubscriptionFactory()
    renewal = CheckoutFactory(
        user=subscription.user, customer_email=subscription.user.email, subscription=subscription, plan=subscription.plan,
        purpose=Checkout.Purpose.RENEWAL, customer_document=CPF,
    )
    mail.outbox.clear()

    for _twice in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            services.activate_checkout(checkout=renewal, paid_at=timezone.now())

    [message] = mail.outbox
    assert message.tags == ["receipt"] and "renovação" in message.body
    assert_well_formed(message)


def test_a_refused_renewal_card_is_emailed_with_the_last_digits_only():
    user = UserFactory(language="en")

    send_card_refused(notice=[user.email, "Ana", "Mensal", 2990, "6f0c3a52-3f7a-4a0e-9a53-0d3f3e0c2a11", "Visa •••• 4242", "Insufficient funds", ""])

    [message] = sent("card_refused")
    assert message.subject == "Your card was refused: your subscription is waiting for payment"
    assert "Visa •••• 4242" in message.body and "Insufficient funds" in message.body
    assert_well_formed(message)


# --- delivery -----------------------------------------------------------------------------------


class FailsOnceBackend(LocmemBackend):
    """An SMTP server that refuses the first connection, then accepts."""

    failures = 0

    def send_messages(self, messages):
        if FailsOnceBackend.failures == 0:
            FailsOnceBackend.failures += 1
            raise ConnectionRefusedError("smtp down")
        return super().send_messages(messages)


def test_an_smtp_failure_is_retried_and_the_email_goes_out_once(settings, django_capture_on_commit_callbacks):
    now = timezone.now()
    checkout = paid(django_capture_on_commit_callbacks, user=UserFactory(), now=now)
    Checkout.objects.filter(pk=checkout.pk).update(status=Checkout.Status.REFUNDED)
    settings.EMAIL_BACKEND = f"{__name__}.FailsOnceBackend"
    FailsOnceBackend.failures = 0

    result = send_refund_email_task.apply(kwargs={"checkout_pk": checkout.pk}, throw=False)  # as a worker runs it

    assert result.get() == 1 and FailsOnceBackend.failures == 1
    assert len(sent("refund")) == 1


def test_a_receipt_goes_out_through_anymail_with_its_html_part_and_tag(settings, django_capture_on_commit_callbacks):
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"

    checkout = paid(django_capture_on_commit_callbacks, user=UserFactory(), now=timezone.now())

    [message] = sent("receipt")
    params = message.anymail_test_params
    assert params["tags"] == ["receipt"]
    assert params["metadata"] == {"checkout_id": str(checkout.public_id), "transaction_id": f"jp-{checkout.pk}"}
    assert params["html_body"].startswith("<!doctype html>") and SELLER in params["html_body"]
    assert SELLER in params["text_body"]
    assert_well_formed(message)

