"""
A subscription's changes told to its owner: cancellation, refund, withdrawal, past due, expired.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.core.mail import get_connection
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.language import languages_for_emails
from billing.gateways.base import CHARGEBACK_PROVIDER_STATUSES
from billing.models import CardAttempt, Checkout, RefundRequest, Subscription
from billing.money import format_brl
from billing.notifications.renewals import NOTICE_CHUNK, card_label, checkout_link
from billing.notifications.retry import EMAIL_RETRY
from billing.periods import grace
from config.emails import transactional_email
from config.tasks import enqueue

logger = logging.getLogger(__name__)

# ---------------------------------------------------------------------------
# The subscription's other e-mails: cancellation, refund, withdrawal, past due, expired.
# Each is queued by the service that makes the change, inside its transaction, and
# goes out after commit: a rolled-back change tells no one.
# ---------------------------------------------------------------------------

# Deleted accounts' addresses (billing.services.erasure, "deleted-<id>@deleted.invalid") reach no one.
UNDELIVERABLE_DOMAIN = ".invalid"


def _reaches_someone(email: str) -> bool:
    return bool(email) and not email.lower().endswith(UNDELIVERABLE_DOMAIN)


def _queue_after_commit(task, kind: str, **fields) -> None:
    def queue():
        try:
            enqueue(task, **fields)
        except Exception:  # the change is made either way; it shows on /account/
            logger.exception("e-mail not queued", extra={"email_kind": kind})

    transaction.on_commit(queue)


def _send_all(messages: list, kind: str) -> int:
    """Over one connection; raises on an SMTP failure so the task retries (EMAIL_RETRY)."""
    if not messages:
        return 0
    with get_connection() as connection:
        sent = connection.send_messages(messages) or 0
    logger.info("e-mails sent", extra={"email_kind": kind, "count": sent})
    return sent


def account_link() -> str:
    return settings.SITE_URL + reverse("billing:account")


def plans_link() -> str:
    return settings.SITE_URL + reverse("billing:plans")


def _subscription_email(subscription: Subscription, *, kind: str, subject, template: str, subject_args: dict | None = None, **context):
    """One e-mail about `subscription` to its owner, whole in their language (`subject`: lazy, translated under it)."""
    user = subscription.user
    with translation.override(languages_for_emails([user.email])[user.email.lower()]):
        context = {
            "name": user.name or user.email,
            "plan": subscription.plan.name,
            "end_date": timezone.localtime(subscription.end_date) if subscription.end_date else None,
            "account_link": account_link(),
            **context,
        }
        return transactional_email(
            subject=str(subject) % subject_args if subject_args else str(subject),
            body=render_to_string(template, context),
            to=[user.email],
            tag=kind,
        )


def queue_cancellation_email(subscription: Subscription, *, immediate: bool) -> None:
    """
    cancel_subscription (`immediate` False: access stays until end_date) and
    cancel_subscription_now (True: access ended) call this in their transaction.
    """
    _queue_after_commit(send_cancellation_email_task, "cancellation", subscription_pk=subscription.pk, immediate=immediate)


def send_cancellation_email(*, subscription_pk: int, immediate: bool) -> int:
    subscription = Subscription.objects.select_related("user", "plan").filter(pk=subscription_pk).first()
    if subscription is None or not _reaches_someone(subscription.user.email):
        return 0
    canceled = subscription.status == Subscription.Status.CANCELED
    if not (canceled if immediate else subscription.cancel_at_period_end or canceled):
        return 0
    message = _subscription_email(
        subscription,
        kind="cancellation",
        subject=gettext_lazy("Your subscription was canceled")
        if immediate
        else gettext_lazy("Your subscription is canceled: access until the end of the period"),
        template="billing/email/cancellation.txt",
        immediate=immediate,
        plans_link=plans_link(),
    )
    return _send_all([message], "cancellation")


def queue_refund_email(checkout: Checkout) -> None:
    """
    refund_checkout calls this inside its transaction, under its locks (so
    after the subscription's): a refund the buyer asked for by withdrawing is
    told once, when the withdrawal's last refund is confirmed (the
    subscription's lock orders them: exactly one sees none left pending);
    any other refund is told on its own. A chargeback is not ours to announce.
    """
    if checkout.gateway_status in CHARGEBACK_PROVIDER_STATUSES:
        return  # the buyer's bank took it back (a chargeback, a PIX dispute that may yet be reversed): nothing to tell
    withdrawn = RefundRequest.objects.filter(checkout=checkout).values_list("subscription_id", flat=True).first()
    if withdrawn is None:
        _queue_after_commit(send_refund_email_task, "refund", checkout_pk=checkout.pk)
    elif not RefundRequest.objects.filter(subscription_id=withdrawn, status=RefundRequest.Status.PENDING).exists():
        _queue_after_commit(send_withdrawal_email_task, "withdrawal", subscription_pk=withdrawn)


def send_refund_email(*, checkout_pk: int) -> int:
    checkout = Checkout.objects.select_related("plan", "subscription").filter(pk=checkout_pk).first()
    if checkout is None or checkout.status != Checkout.Status.REFUNDED or not _reaches_someone(checkout.customer_email):
        return 0
    email = checkout.customer_email
    with translation.override(languages_for_emails([email])[email.lower()]):
        card = getattr(checkout, "card_last_digits", "")
        context = {
            "name": checkout.customer_name or email,
            "plan": checkout.plan.name,
            "amount": format_brl(checkout.total_cents),
            "paid_at": timezone.localtime(checkout.paid_at) if checkout.paid_at else None,
            "card": card_label(getattr(checkout, "card_brand", ""), card) if checkout.payment_method == Checkout.Method.CARD and card else "",
            "access_ended": checkout.subscription_id is not None and checkout.subscription.status == Subscription.Status.REFUNDED,
            "account_link": account_link(),
        }
        message = transactional_email(
            subject=_("Your payment of %(amount)s was refunded") % {"amount": context["amount"]},
            body=render_to_string("billing/email/refund.txt", context),
            to=[email],
            tag="refund",
            metadata={"checkout_id": str(checkout.public_id)},
        )
    return _send_all([message], "refund")


def send_withdrawal_email(*, subscription_pk: int) -> int:
    subscription = Subscription.objects.select_related("user", "plan").filter(pk=subscription_pk).first()
    if subscription is None or not _reaches_someone(subscription.user.email):
        return 0
    refunds = list(RefundRequest.objects.filter(subscription=subscription).values_list("status", "amount_cents"))
    if not refunds or any(status != RefundRequest.Status.REFUNDED for status, _amount in refunds):
        return 0
    amount = format_brl(sum(amount for _status, amount in refunds))
    message = _subscription_email(
        subscription,
        kind="withdrawal",
        subject=gettext_lazy("Your withdrawal is complete: %(amount)s refunded"),
        subject_args={"amount": amount},
        template="billing/email/withdrawal.txt",
        amount=amount,
    )
    return _send_all([message], "withdrawal")


def _queue_lapse_emails(kind: str, subscription_pks: list[int]) -> None:
    def queue():
        for start in range(0, len(subscription_pks), NOTICE_CHUNK):
            try:
                enqueue(send_lapse_emails_task, kind=kind, subscription_pks=subscription_pks[start : start + NOTICE_CHUNK])
            except Exception:  # the change is made either way; it shows on /account/
                logger.exception("e-mail not queued", extra={"email_kind": kind})

    transaction.on_commit(queue)


def queue_swept_emails(kind: str, claim) -> None:
    """
    The sweep's past-due and expiry steps call this in their transaction: the
    subscriptions the step tagged `claim` are e-mailed after commit, in chunks
    like the renewal notices. `kind`: "past_due" or "expired".
    """
    pks = list(Subscription.objects.filter(sweep_claim=claim).order_by("pk").values_list("pk", flat=True))
    _queue_lapse_emails(kind, pks)


def queue_expiry_email(subscription: Subscription) -> None:
    """expire_subscription (the admin's) calls this in its transaction."""
    _queue_lapse_emails("expired", [subscription.pk])


def send_lapse_emails(*, kind: str, subscription_pks: list[int]) -> int:
    """
    Past due (the period ended, access continues through the grace days, the
    renewal link) or expired (access ended: a free trial unpaid, grace over,
    or the admin's decision), to each subscription still in that state. A past
    due subscription whose saved card was just refused is left out: the
    card-refused e-mail already said so, with the same link.
    """
    past_due = kind == "past_due"
    status = Subscription.Status.PAST_DUE if past_due else Subscription.Status.EXPIRED
    subscriptions = Subscription.objects.filter(pk__in=subscription_pks, status=status).select_related("user", "plan").order_by("pk")
    renewals = {}
    if past_due:
        open_renewals = Checkout.objects.filter(
            subscription_id__in=subscription_pks, purpose=Checkout.Purpose.RENEWAL, status=Checkout.Status.PENDING
        )
        told = open_renewals.filter(card_attempts__kind=CardAttempt.Kind.RENEWAL, card_attempts__status=CardAttempt.Status.REFUSED)
        subscriptions = subscriptions.exclude(pk__in=told.values("subscription_id"))
        renewals = dict(open_renewals.order_by("pk").values_list("subscription_id", "public_id"))
    messages = []
    for subscription in subscriptions:
        if not _reaches_someone(subscription.user.email):
            continue
        renewal = renewals.get(subscription.pk)
        reason = subscription.last_reason
        if past_due:
            subject = gettext_lazy("Your subscription is waiting for payment")
        elif reason == Subscription.Reason.TRIAL_ENDED:
            subject = gettext_lazy("Your free trial has ended")
        else:
            subject = gettext_lazy("Your subscription has ended")
        messages.append(
            _subscription_email(
                subscription,
                kind=kind,
                subject=subject,
                template=f"billing/email/{kind}.txt",
                grace_until=timezone.localtime(subscription.end_date + grace()) if subscription.end_date else None,
                link=checkout_link(renewal) if renewal else account_link(),
                trial=reason == Subscription.Reason.TRIAL_ENDED,
                by_admin=reason == Subscription.Reason.EXPIRED_BY_ADMIN,
                plans_link=plans_link(),
            )
        )
    return _send_all(messages, kind)


@shared_task(name="billing.tasks.send_cancellation_email", **EMAIL_RETRY)
def send_cancellation_email_task(*, subscription_pk: int, immediate: bool) -> int:
    """E-mails a cancellation, queued after its commit."""
    return send_cancellation_email(subscription_pk=subscription_pk, immediate=immediate)


@shared_task(name="billing.tasks.send_refund_email", **EMAIL_RETRY)
def send_refund_email_task(*, checkout_pk: int) -> int:
    """E-mails a refund, queued after its commit."""
    return send_refund_email(checkout_pk=checkout_pk)


@shared_task(name="billing.tasks.send_withdrawal_email", **EMAIL_RETRY)
def send_withdrawal_email_task(*, subscription_pk: int) -> int:
    """E-mails a completed withdrawal, queued after its last refund's commit."""
    return send_withdrawal_email(subscription_pk=subscription_pk)


@shared_task(name="billing.tasks.send_lapse_emails", **EMAIL_RETRY)
def send_lapse_emails_task(*, kind: str, subscription_pks: list) -> int:
    """E-mails a chunk of past-due or expired subscriptions, queued after the change's commit."""
    return send_lapse_emails(kind=kind, subscription_pks=subscription_pks)
