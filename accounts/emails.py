"""
The account e-mails (confirmation, set-password) and the Celery tasks that send them, side by side as
in billing/notifications.py: services queue them after commit, accounts/tasks.py re-exports the tasks
for Celery's autodiscovery, and nothing here imports the services.
"""

import logging
from smtplib import SMTPException

from celery import shared_task
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.utils.translation import gettext as _

from accounts.language import language_for
from accounts.tokens import email_confirmation_token
from config.emails import transactional_email
from config.tasks import enqueue

logger = logging.getLogger(__name__)


def queue_confirmation_email(*, user) -> None:
    """After commit, like the set-password e-mail: a retried task, never failing the sign-up."""
    transaction.on_commit(lambda: _enqueue_email(send_confirmation_email_task, what="confirmation", user_id=user.pk))


def send_confirmation_email(*, user_id: int) -> None:
    User = get_user_model()
    user = User.objects.filter(pk=user_id, email_confirmed_at__isnull=True).first()
    if user is None:
        return  # gone, or confirmed meanwhile
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = email_confirmation_token.make_token(user)
    link = settings.SITE_URL + reverse("accounts:confirm_email", kwargs={"uidb64": uid, "token": token})
    with translation.override(language_for(user)):
        message = transactional_email(
            subject=_("Confirm your CreatorFlix e-mail"),
            body=render_to_string("accounts/email/confirm_email.txt", {"user": user, "link": link}),
            to=[user.email],
        )
    message.send()
    logger.info("confirmation e-mail sent", extra={"user_id": user.pk})


def queue_set_password_email(*, user_id: int) -> None:
    """
    After commit: the e-mail goes through a retried task, so an SMTP outage
    neither fails the payment that created the account nor loses the e-mail.
    """
    _enqueue_email(send_set_password_email_task, what="set-password", user_id=user_id)


def _enqueue_email(task, *, what: str, **kwargs) -> None:
    try:
        enqueue(task, **kwargs)
    except Exception:  # in-process (no broker) and still failing: log, never fail the caller
        logger.exception(f"{what} e-mail not sent", extra=kwargs)


def send_set_password_email(*, user_id: int) -> None:
    User = get_user_model()
    user = User.objects.filter(pk=user_id).first()
    if user is None:
        return
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    link = settings.SITE_URL + reverse("accounts:password_reset_confirm", kwargs={"uidb64": uid, "token": token})
    context = {"user": user, "link": link}
    with translation.override(language_for(user)):
        message = transactional_email(
            subject=_("Your CreatorFlix account: set your password"),
            body=render_to_string("accounts/email/set_password.txt", context),
            to=[user.email],
        )
    message.send()
    logger.info("set-password e-mail sent", extra={"user_id": user.pk})


@shared_task(
    name="accounts.tasks.send_set_password_email",
    autoretry_for=(SMTPException, OSError),
    retry_backoff=30,
    # At most TASK_RETRY_WAIT_MAX between tries (it must stay below the broker's visibility timeout);
    # 20 tries cover about an hour and a half of SMTP outage.
    retry_backoff_max=settings.TASK_RETRY_WAIT_MAX,
    max_retries=20,
)
def send_set_password_email_task(user_id: int) -> None:
    send_set_password_email(user_id=user_id)


@shared_task(
    name="accounts.tasks.send_confirmation_email",
    autoretry_for=(SMTPException, OSError),
    retry_backoff=30,
    # At most TASK_RETRY_WAIT_MAX between tries (it must stay below the broker's visibility timeout);
    # 20 tries cover about an hour and a half of SMTP outage.
    retry_backoff_max=settings.TASK_RETRY_WAIT_MAX,
    max_retries=20,
)
def send_confirmation_email_task(user_id: int) -> None:
    send_confirmation_email(user_id=user_id)
