"""Account writes: registration, e-mail confirmation, and accounts created for paying customers."""

import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.db import IntegrityError, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from accounts.age import DECLARATION, age_on, provider_for, require_min_age
from accounts.age import policy as age_policy
from accounts.emails import queue_confirmation_email, queue_set_password_email
from accounts.language import supported
from accounts.models import AgeVerification
from accounts.signals import email_confirmed
from config.errors import DomainError

logger = logging.getLogger(__name__)


class EmailTaken(DomainError):
    code = "email_taken"


def register_user(*, email: str, password: str, name: str = "", birth_date=None):
    """
    A sign-up: the account starts unconfirmed, in the language the visitor is
    using (kept for their e-mails), and after commit is sent a confirmation
    link. Until the e-mail is confirmed no guest payment made with it is
    attached to it.
    """
    User = get_user_model()
    email = User.objects.normalize_email(email).strip().lower()
    if birth_date is not None:
        require_min_age(birth_date, today=timezone.localdate())  # under MIN_AGE: no account at all
    candidate = User(email=email, name=name)
    validate_password(password, user=candidate)
    try:
        with transaction.atomic():
            user = User.objects.create_user(
                email=email, password=password, name=name, language=supported(translation.get_language()) or ""
            )
    except IntegrityError:
        raise EmailTaken(_("An account with this e-mail already exists."), fields={"email": [_("Already registered.")]}) from None
    if birth_date is not None:
        user = declare_birth_date(user=user, birth_date=birth_date)
    queue_confirmation_email(user=user)
    return user


@transaction.atomic
def confirm_email(*, user, now=None) -> bool:
    """
    The user proved they read their mailbox (a confirmation link, or a
    password set through a reset link). Marks the e-mail confirmed once, and
    hands them the guest payments made with it that waited unclaimed (billing does, on the
    `email_confirmed` signal, in this transaction).
    Idempotent: returns whether this call confirmed it.
    """
    now = now or timezone.now()
    confirmed = bool(
        get_user_model().objects.filter(pk=user.pk, email_confirmed_at__isnull=True).update(email_confirmed_at=now)
    )
    if confirmed:
        user.email_confirmed_at = now
    email_confirmed.send(sender=confirm_email, user=user, now=now)  # billing claims the guest payments
    return confirmed


def get_or_create_customer(*, email: str, name: str = "", birth_date=None) -> tuple:
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
            user = User.objects.create_user(email=email, password=None, name=name, **_declared_age(birth_date))
    except IntegrityError:
        # A concurrent payment for the same e-mail created it first.
        return User.objects.get(email__iexact=email), False
    transaction.on_commit(lambda: queue_set_password_email(user_id=user.pk))
    return user, True


def get_guest_payment_owner(*, email: str, name: str = "", birth_date=None) -> tuple:
    """
    (the account a guest payment goes to, whether it was created now). The
    account is None while the payment must wait unclaimed: the e-mail belongs to an account whose
    owner never proved they read that mailbox, so it may be a squatter's
    (contract §3). A confirmed account gets it; so does an account with no
    usable password (created by an earlier payment: only the mailbox, through
    the set-password link, can ever log into it); no account → created now.
    The payer's declared `birth_date` (checkout) is the owner's declaration when it has none yet.
    """
    user, created = get_or_create_customer(email=email, name=name, birth_date=birth_date)
    if created or user.email_confirmed_at is not None or not user.has_usable_password():
        if birth_date is not None and user.birth_date is None:
            user = declare_birth_date(user=user, birth_date=birth_date)
        return user, created
    return None, False


def _declared_age(birth_date, *, now=None) -> dict:
    """The age fields of an account created for a payment whose checkout declared `birth_date` (validated there)."""
    if birth_date is None:
        return {}
    now = now or timezone.now()
    fields = {"birth_date": birth_date}
    if age_policy() == DECLARATION and age_on(birth_date, timezone.localdate(now)) >= settings.MIN_AGE:
        fields.update(age_confirmed_at=now, age_confirmed_by=DECLARATION)
    return fields


def keep_set_password_link_valid(*, user, last_login) -> None:
    """
    After the checkout signed a guest in where they paid (contract §3): put
    back the account's `last_login`. Password-reset tokens hash it, so the
    set-password e-mail sent for that account would otherwise read as an
    expired link; being signed in by the checkout is not the owner's own login.
    """
    get_user_model().objects.filter(pk=user.pk).update(last_login=last_login)
    user.last_login = last_login


@transaction.atomic
def anonymise_user(*, user, email: str):
    """
    A deleted account (LGPD art. 18): kept as a row (money records point at
    it), with nothing that identifies the person: `email` is the anonymous
    address given by the caller, no name, no usable password (every other
    session ends), inactive. The real address is free to sign up again.
    """
    user.email = email
    user.name = ""
    user.language = ""
    user.email_confirmed_at = None
    user.is_active = False
    user.is_staff = False
    user.is_superuser = False
    user.last_login = None
    user.birth_date = None  # the confirmation (when, by what) stays: it was checked
    user.set_unusable_password()
    user.save()
    user.groups.clear()
    user.user_permissions.clear()
    return user


# ---------------------------------------------------------------------------
# Age assurance (accounts/age.py)
# ---------------------------------------------------------------------------


@transaction.atomic
def declare_birth_date(*, user, birth_date, now=None):
    """
    The person's birth date: refused under MIN_AGE (UnderAge, naming
    `birth_date`). Under the `declaration` policy it confirms the age; under a
    provider's, it is kept and the provider confirms (start_age_verification).
    A confirmed age is never unconfirmed by a later declaration.
    """
    now = now or timezone.now()
    require_min_age(birth_date, today=timezone.localdate(now))
    User = get_user_model()
    user = User.objects.select_for_update().get(pk=user.pk)
    fields = [] if user.birth_date == birth_date else ["birth_date"]
    user.birth_date = birth_date
    if user.age_confirmed_at is None and age_policy() == DECLARATION:
        user.age_confirmed_at = now
        user.age_confirmed_by = DECLARATION
        fields += ["age_confirmed_at", "age_confirmed_by"]
    if fields:  # every checkout of a known buyer declares the same date again: nothing to write then
        user.save(update_fields=fields)
    return user


@transaction.atomic
def start_age_verification(*, user, return_url: str, now=None) -> tuple:
    """A check at the configured provider: (the AgeVerification, the URL to send the person to)."""
    now = now or timezone.now()
    name = age_policy()
    verification = AgeVerification.objects.create(user=user, provider=name, started_at=now)
    return verification, provider_for(name).start(verification, return_url=return_url)


@transaction.atomic
def finish_age_verification(*, user, provider: str, reference: str, passed: bool, provider_reference: str = "", now=None):
    """
    The provider's result for `user`'s check (the person the provider sent
    back, logged in): another account's reference is never finished. Compare-
    and-set on the pending check, so a repeated callback changes nothing; a
    pass confirms the user's age. None: no such check of this user.
    """
    now = now or timezone.now()
    status = AgeVerification.Status.PASSED if passed else AgeVerification.Status.FAILED
    own = AgeVerification.objects.filter(provider=provider, reference=reference, user_id=user.pk)
    claimed = own.filter(status=AgeVerification.Status.PENDING).update(
        status=status, finished_at=now, provider_reference=provider_reference[:200]
    )
    verification = own.first()
    if verification is None:
        return None
    if claimed and passed:
        User = get_user_model()
        User.objects.filter(pk=verification.user_id, age_confirmed_at__isnull=True).update(
            age_confirmed_at=now, age_confirmed_by=provider
        )
    return verification
