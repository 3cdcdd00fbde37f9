"""
Renewal notices (the charge issued before end_date), a refused saved card, and the unpaid checkout's
recovery reminders, with the links they carry.
"""

from __future__ import annotations

import logging
from datetime import datetime

from celery import shared_task
from django.conf import settings
from django.core import signing
from django.core.mail import get_connection
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from accounts.language import languages_for_emails
from billing.money import format_brl
from billing.notifications.retry import EMAIL_RETRY
from config.emails import transactional_email
from config.tasks import enqueue

logger = logging.getLogger(__name__)

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


