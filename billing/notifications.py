"""
Billing's e-mails and the Celery tasks that send them. Services queue them
after commit through this module and never import tasks; nothing here
changes a row.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from celery import shared_task
from django.conf import settings
from django.core import signing
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
from billing.periods import grace
from billing.receipts import Receipt, build_marketplace_receipt, build_receipt, has_receipt
from config.emails import transactional_email
from config.tasks import enqueue

logger = logging.getLogger(__name__)

# Every e-mail task retries an SMTP failure the same way: waits below the broker's visibility timeout
# (config/settings.py, TASK_RETRY_WAIT_MAX); 7 tries cover about 25 minutes.
EMAIL_RETRY = {"autoretry_for": (OSError,), "retry_backoff": 60, "retry_backoff_max": settings.TASK_RETRY_WAIT_MAX, "max_retries": 7}

# Renewal e-mails go to the worker in chunks: the sweep neither waits on SMTP
# nor renders thousands of templates; a chunk that fails is retried alone.
NOTICE_CHUNK = 500


def checkout_link(public_id) -> str:
    """Where a customer pays a checkout (renewal e-mails, the account page)."""
    return settings.SITE_URL + reverse("billing:checkout-pay", kwargs={"checkout_id": public_id})


UNSUBSCRIBE_SALT = "billing.reminders.unsubscribe"


def reminder_unsubscribe_link(email: str) -> str:
    """The link in every checkout reminder that stops them for this address (signed: no one else's)."""
    token = signing.dumps(email.strip().lower(), salt=UNSUBSCRIBE_SALT, compress=True)
    return settings.SITE_URL + reverse("billing:reminders-unsubscribe", kwargs={"token": token})


def email_of_unsubscribe_token(token: str) -> str | None:
    try:
        return signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except signing.BadSignature:
        return None


def queue_recovery_reminders(reminders: list) -> None:
    """After the sweep's commit: `reminders` are [email, name, plan name, total cents, checkout id, status]."""
    for start in range(0, len(reminders), NOTICE_CHUNK):
        chunk = reminders[start : start + NOTICE_CHUNK]
        try:
            enqueue(send_recovery_reminders_task, reminders=chunk)
        except Exception:  # a reminder is a nudge; the checkout stays payable either way
            logger.exception("checkout reminders not queued", extra={"count": len(chunk)})


def send_recovery_reminders(*, reminders) -> int:
    """One reminder per unpaid checkout claimed by the sweep, each whole in its recipient's language."""
    messages = []
    languages = languages_for_emails([reminder[0] for reminder in reminders])
    for email, name, plan_name, total_cents, public_id, _status in reminders:
        unsubscribe = reminder_unsubscribe_link(email)
        with translation.override(languages[email.lower()]):
            context = {"name": name, "plan": plan_name, "total": format_brl(total_cents), "link": checkout_link(public_id), "unsubscribe": unsubscribe}
            messages.append(
                transactional_email(
                    subject=_("Your PIX for %(plan)s is waiting") % {"plan": plan_name},
                    body=render_to_string("billing/email/checkout_reminder.txt", context),
                    to=[email],
                    headers={"List-Unsubscribe": f"<{unsubscribe}>"},
                    tag="checkout_reminder",
                )
            )
    with get_connection() as connection:
        sent = connection.send_messages(messages) or 0
    logger.info("checkout reminders sent", extra={"count": sent})
    return sent


def card_label(brand: str, last_digits: str) -> str:
    """A saved card as people read it: "Visa •••• 4242"."""
    return f"{(brand or '').title()} •••• {last_digits}".strip()


def queue_renewal_notices(notices: list) -> None:
    """
    After the sweep's commit: `notices` are [email, name, plan name, total cents, checkout id, end date ISO,
    is trial, card] (the last two optional: true for the first charge after a free trial; the saved card
    that will be charged at the end date, as card_label() writes it, "" for a PIX renewal).
    """
    for start in range(0, len(notices), NOTICE_CHUNK):
        chunk = notices[start : start + NOTICE_CHUNK]
        try:
            enqueue(send_renewal_notices_task, notices=chunk)
        except Exception:  # the renewals exist either way; they show on /account/
            logger.exception("renewal notices not queued", extra={"count": len(chunk)})


def send_renewal_notices(*, notices) -> int:
    """
    One e-mail per renewal issued, over one connection. Raises on an SMTP
    failure so the task retries.
    """
    messages = []
    # Each e-mail whole in its recipient's language (pt-BR unless they chose English): subject,
    # text and the date's month name rendered under the same override.
    languages = languages_for_emails([notice[0] for notice in notices])
    for email, name, plan_name, total_cents, public_id, end_date, *rest in notices:
        trial = bool(rest and rest[0])  # the first charge after a free trial (an optional 7th item)
        card = rest[1] if len(rest) > 1 else ""  # the saved card charged at the end date (an optional 8th item)
        with translation.override(languages[email.lower()]):
            context = {
                "name": name,
                "plan": plan_name,
                "total": format_brl(total_cents),
                "link": checkout_link(public_id),
                "end_date": timezone.localtime(datetime.fromisoformat(end_date)),
                "trial": trial,
                "card": card,
            }
            if card:
                subject = _("Your CreatorFlix subscription renews automatically")
            else:
                subject = _("Your free trial ends soon") if trial else _("Your CreatorFlix subscription renews soon")
            messages.append(
                transactional_email(
                    subject=subject, body=render_to_string("billing/email/renewal_notice.txt", context), to=[email], tag="renewal_notice"
                )
            )
    with get_connection() as connection:
        sent = connection.send_messages(messages) or 0
    logger.info("renewal notices sent", extra={"count": sent})
    return sent


def queue_card_refused_notice(notice: list) -> None:
    """
    After commit: an automatic renewal's card was refused. `notice` is [email, name, plan name, total cents,
    checkout id, card, reason, next try ISO or ""]: the e-mail links to that renewal, payable by PIX or
    another card.
    """
    try:
        enqueue(send_card_refused_task, notice=notice)
    except Exception:  # the renewal stays payable from the account page; the sweep retries the card
        logger.exception("card refusal notice not queued")


def send_card_refused(*, notice) -> int:
    email, name, plan_name, total_cents, public_id, card, reason, next_try = notice
    language = languages_for_emails([email])[email.lower()]
    with translation.override(language):
        context = {
            "name": name,
            "plan": plan_name,
            "total": format_brl(total_cents),
            "card": card,
            "reason": reason,
            "link": checkout_link(public_id),
            "next_try": timezone.localtime(datetime.fromisoformat(next_try)) if next_try else None,
        }
        message = transactional_email(
            subject=_("Your card was refused: your subscription is waiting for payment"),
            body=render_to_string("billing/email/card_refused.txt", context),
            to=[email],
            tag="card_refused",
            metadata={"checkout_id": public_id},
        )
    with get_connection() as connection:
        sent = connection.send_messages([message]) or 0
    logger.info("card refusal notice sent", extra={"count": sent})
    return sent


@shared_task(
    name="billing.tasks.send_card_refused",
    **EMAIL_RETRY,
)
def send_card_refused_task(*, notice: list) -> int:
    """E-mails the subscriber whose automatic renewal was refused, queued after the refusal's commit."""
    return send_card_refused(notice=notice)


@shared_task(
    name="billing.tasks.send_renewal_notices",
    **EMAIL_RETRY,
)
def send_renewal_notices_task(*, notices: list) -> int:
    """E-mails a chunk of renewal links, queued by the sweep after its commit."""
    return send_renewal_notices(notices=notices)


@shared_task(
    name="billing.tasks.send_recovery_reminders",
    **EMAIL_RETRY,
)
def send_recovery_reminders_task(*, reminders: list) -> int:
    """E-mails a chunk of unpaid-checkout reminders, queued by the sweep after its commit."""
    return send_recovery_reminders(reminders=reminders)


def queue_receipt_after_commit(*, checkout_pk: int) -> None:
    """Called by the service that records a payment: once it commits, its receipt goes out (a retried task)."""

    def queue():
        try:
            enqueue(send_receipt_task, checkout_pk=checkout_pk)
        except Exception:
            logger.exception("receipt not queued", extra={"checkout_pk": checkout_pk})

    transaction.on_commit(queue)


def send_receipt(*, checkout_pk: int) -> bool:
    """
    The receipt of one confirmed payment (billing/receipts.py) to its payer,
    HTML with a plain-text part, whole in the payer's language. Sent once per
    checkout: a repeated task finds `receipt_sent_at` set and sends nothing.
    """
    checkout = Checkout.objects.select_related("plan", "coupon", "subscription").filter(pk=checkout_pk).first()
    if checkout is None or not has_receipt(checkout) or checkout.receipt_sent_at is not None:
        return False
    _send_receipt_email(checkout.customer_email, lambda: build_receipt(checkout))
    # Compare-and-set: two deliveries of the task at once send at most one more.
    Checkout.objects.filter(pk=checkout.pk, receipt_sent_at__isnull=True).update(receipt_sent_at=timezone.now())
    logger.info("receipt sent", extra={"checkout": str(checkout.public_id)})
    return True


def _send_receipt_email(email: str, build: Callable[[], Receipt]) -> None:
    """One receipt e-mail, HTML with a plain-text part, whole in the recipient's language (`build` runs under it)."""
    with translation.override(languages_for_emails([email])[email.lower()]):
        receipt = build()
        context = {"receipt": receipt}
        message = transactional_email(
            subject=_("Receipt: %(description)s, %(amount)s") % {"description": receipt.description, "amount": receipt.amount_display},
            body=render_to_string("billing/email/receipt.txt", context),
            html=render_to_string("billing/email/receipt.html", context),
            to=[email],
            tag="receipt",
            metadata={key: value for key, value in {"checkout_id": receipt.checkout_id, "transaction_id": receipt.transaction_id}.items() if value},
        )
    message.send()


def queue_marketplace_receipt_after_commit(
    *, subscription_pk: int, amount_cents: int, paid_at: datetime, transaction_id: str, payer_name: str, payer_email: str
) -> None:
    """A marketplace payment applied by record_marketplace_payment: its receipt once that commits."""
    fields = {
        "subscription_pk": subscription_pk, "amount_cents": amount_cents, "paid_at": paid_at.isoformat(),
        "transaction_id": transaction_id, "payer_name": payer_name, "payer_email": payer_email,
    }

    def queue():
        try:
            enqueue(send_marketplace_receipt_task, **fields)
        except Exception:
            logger.exception("marketplace receipt not queued", extra={"external_id": transaction_id})

    transaction.on_commit(queue)


def send_marketplace_receipt(*, subscription_pk: int, amount_cents: int, paid_at: str, transaction_id: str, payer_name: str, payer_email: str) -> bool:
    subscription = Subscription.objects.select_related("plan").filter(pk=subscription_pk).first()
    if subscription is None or not amount_cents:
        return False
    _send_receipt_email(
        payer_email,
        lambda: build_marketplace_receipt(
            subscription=subscription, amount_cents=amount_cents, paid_at=datetime.fromisoformat(paid_at),
            transaction_id=transaction_id, payer_name=payer_name, payer_email=payer_email,
        ),
    )
    logger.info("marketplace receipt sent", extra={"external_id": transaction_id})
    return True


@shared_task(
    name="billing.tasks.send_marketplace_receipt",
    **EMAIL_RETRY,
)
def send_marketplace_receipt_task(**fields) -> bool:
    """E-mails one marketplace payment's receipt, queued after the payment's commit."""
    return send_marketplace_receipt(**fields)


@shared_task(
    name="billing.tasks.send_receipt",
    **EMAIL_RETRY,
)
def send_receipt_task(*, checkout_pk: int) -> bool:
    """E-mails one payment's receipt, queued after the payment's commit."""
    return send_receipt(checkout_pk=checkout_pk)


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
