"""
Data subjects' requests (LGPD art. 18): recorded with their deadline, and the
account deletion itself, which spans accounts and billing in one transaction.
"""

from __future__ import annotations

from datetime import datetime

from django.contrib.admin.models import LogEntry
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.services import anonymise_user
from billing.personal_data import ERASED
from billing.services import anonymous_email, erase_customer_data
from config.errors import Invalid
from legal.models import ConsentRecord, DataRequest, LegalDocument


class WrongPassword(Invalid):
    code = "wrong_password"


@transaction.atomic
def record_data_request(
    *, kind: str, user=None, channel: str = DataRequest.Channel.STAFF, note: str = "",
    received_at: datetime | None = None, completed: bool = False, now: datetime | None = None,
) -> DataRequest:
    """A request as received, due DataRequest.DEADLINE after it arrived; done at once when `completed`."""
    now = now or timezone.now()
    received_at = received_at or now
    return DataRequest.objects.create(
        kind=kind, user=user, channel=channel, note=note, received_at=received_at,
        deadline=received_at + DataRequest.DEADLINE, completed_at=now if completed else None,
    )


@transaction.atomic
def complete_data_request(*, data_request: DataRequest, now: datetime | None = None) -> DataRequest:
    """Staff answered it. Idempotent: a done request keeps its first completion time."""
    now = now or timezone.now()
    DataRequest.objects.filter(pk=data_request.pk, completed_at__isnull=True).update(completed_at=now)
    return DataRequest.objects.get(pk=data_request.pk)


@transaction.atomic
def delete_account(*, user, password: str, now: datetime | None = None):
    """
    The owner deletes their account, confirming with the password: every
    subscription ends, personal data is replaced by anonymous values in the
    account, checkouts, stored gateway payloads, webhook events,
    reconciliation notes and the admin history; money records keep amounts,
    dates and gateway ids. The e-mail is free to sign up again. The caller
    logs the session out.
    """
    now = now or timezone.now()
    if not password or not user.check_password(password):
        message = _("The password is not correct.")
        raise WrongPassword(message, fields={"password": [message]})
    email = user.email
    erase_customer_data(user=user, now=now)  # locks the user first (billing's lock order)
    for entry in LogEntry.objects.filter(Q(object_repr__icontains=email) | Q(change_message__icontains=email)):
        entry.object_repr = entry.object_repr.replace(email, ERASED)[:200]
        entry.change_message = entry.change_message.replace(email, ERASED)
        entry.save(update_fields=["object_repr", "change_message"])
    anonymise_user(user=user, email=anonymous_email(user.pk))
    record_data_request(
        kind=DataRequest.Kind.DELETION, user=user, channel=DataRequest.Channel.SELF_SERVICE, completed=True, now=now
    )
    return user


# ---------------------------------------------------------------------------
# Legal pages and cookie consent
# ---------------------------------------------------------------------------


@transaction.atomic
def create_legal_document(*, kind: str, title_pt_br: str, body_pt_br: str, title_en: str = "", body_en: str = "") -> LegalDocument:
    """A new draft version of a legal page: the next number of its kind."""
    last = LegalDocument.objects.select_for_update().filter(kind=kind).order_by("-version").first()
    return LegalDocument.objects.create(
        kind=kind, version=(last.version + 1) if last else 1,
        title_pt_br=title_pt_br, body_pt_br=body_pt_br, title_en=title_en, body_en=body_en,
    )


@transaction.atomic
def publish_legal_document(*, document: LegalDocument, now: datetime | None = None) -> LegalDocument:
    """From now on the version in force (checkouts record it). Idempotent."""
    now = now or timezone.now()
    LegalDocument.objects.filter(pk=document.pk, published_at__isnull=True).update(published_at=now)
    return LegalDocument.objects.get(pk=document.pk)


@transaction.atomic
def record_consent(
    *, visitor_id: str, analytics: bool, marketing: bool, user=None, privacy_version: int | None = None, now: datetime | None = None
) -> ConsentRecord:
    """A cookie choice, kept as proof (LGPD art. 8); every change is a new record."""
    now = now or timezone.now()
    return ConsentRecord.objects.create(
        visitor_id=visitor_id, analytics=analytics, marketing=marketing,
        user=user if user is not None and user.is_authenticated else None,
        privacy_version=privacy_version, decided_at=now,
    )
