"""Account writes: registration, and accounts created for paying customers."""

import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils import translation
from django.utils.http import urlsafe_base64_encode
from django.utils.translation import gettext as _

from accounts.language import language_for
from config.api_errors import DomainError

logger = logging.getLogger(__name__)


class EmailTaken(DomainError):
    code = "email_taken"


def register_user(*, email: str, password: str, name: str = ""):
    User = get_user_model()
    email = User.objects.normalize_email(email).strip().lower()
    candidate = User(email=email, name=name)
    validate_password(password, user=candidate)
    try:
        with transaction.atomic():
            return User.objects.create_user(email=email, password=password, name=name)
    except IntegrityError:
        raise EmailTaken(_("An account with this e-mail already exists."), fields={"email": [_("Already registered.")]})


def get_or_create_customer(*, email: str, name: str = "") -> tuple:
    """
    The account a payment belongs to, created when the e-mail has none so no
    payment is ever left without an owner (contract §3). A new account gets an
    unusable password and, after commit, a set-password e-mail.
    """
    User = get_user_model()
    email = User.objects.normalize_email(email).strip().lower()
    user = User.objects.filter(email__iexact=email).first()
    if user:
        return user, False
    try:
        with transaction.atomic():
            user = User.objects.create_user(email=email, password=None, name=name)
    except IntegrityError:
        # A concurrent payment for the same e-mail created it first.
        return User.objects.get(email__iexact=email), False
    transaction.on_commit(lambda: queue_set_password_email(user_id=user.pk))
    return user, True


def queue_set_password_email(*, user_id: int) -> None:
    """
    After commit: the e-mail goes through a retried task, so an SMTP outage
    neither fails the payment that created the account nor loses the e-mail.
    """
    from accounts.tasks import send_set_password_email as task
    from config.tasks import enqueue

    try:
        enqueue(task, user_id=user_id)
    except Exception:  # noqa: BLE001 - in-process (no broker) and still failing: log, never fail the caller
        logger.exception("set-password e-mail not sent", extra={"user_id": user_id})


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
        subject = _("Your CreatorFlix account: set your password")
        message = render_to_string("accounts/email/set_password.txt", context)
    send_mail(subject=subject, message=message, from_email=None, recipient_list=[user.email], fail_silently=False)
    logger.info("set-password e-mail sent", extra={"user_id": user.pk})
