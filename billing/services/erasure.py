"""
Erasing a customer's personal data from billing (LGPD art. 18, deletion).

Money records stay, for the accounting years the law requires: amounts,
dates, statuses, plans, gateway and transaction ids. What identifies the
person goes: the name, e-mail, CPF and phone on their checkouts, in the
gateway's copy of each charge (`gateway_response`), in the stored webhook
events (masked payload and encrypted raw body), in reconciliation notes and
in the outbound events for the operator's webhook endpoints (issue 14; their
ordering key, a hash of the e-mail, moves to the anonymous address's), in
marketplace records (a payment that waited for the e-mail's confirmation, a
postback whose amount matched no plan: its stored body), and the address
leaves the reminder opt-out list.
Their live or pending subscriptions end (`canceled` / `account_deleted`) and
their unpaid checkouts are canceled. The account itself is anonymised by the
caller (legal.services.delete_account), in the same transaction.
"""

from __future__ import annotations

import json
from datetime import datetime

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from billing import ledger
from billing.checkout_status import save_checkout
from billing.ledger_models import LedgerEntry
from billing.models import (
    Checkout,
    ReconciliationItem,
    ReminderOptOut,
    Subscription,
    UnclaimedMarketplacePayment,
    WebhookEvent,
)
from billing.personal_data import ERASED, erase_personal_data, erase_personal_text
from billing.services.card_attempts import CARD_FIELDS, forget_card_fields
from billing.services.common import set_transition, void_open_charges
from billing.services.locks import lock_user
from billing.services.outbox import ordering_key
from integrations.models import OutboxEvent

ERASED_EMAIL_DOMAIN = "deleted.invalid"


def anonymous_email(user_id: int) -> str:
    """The address that replaces a deleted customer's, on the account and on their checkouts."""
    return f"deleted-{user_id}@{ERASED_EMAIL_DOMAIN}"


def is_erased_email(email: str) -> bool:
    """The address of a deleted account (anonymous_email): money for it reaches no one."""
    return (email or "").lower().endswith("@" + ERASED_EMAIL_DOMAIN)


@transaction.atomic
def erase_customer_data(*, user, now: datetime | None = None) -> dict:
    """Lock order: the user, their subscriptions, their checkouts (each by pk). Returns counts."""
    now = now or timezone.now()
    user = lock_user(user.pk)
    subscriptions = list(Subscription.objects.select_for_update().filter(user_id=user.pk).order_by("pk"))
    checkouts = list(Checkout.objects.of_customer(user).select_for_update().order_by("pk"))

    known = {user.email, user.name}
    for checkout in checkouts:
        known |= {checkout.customer_name, checkout.customer_email, checkout.customer_document, checkout.customer_phone}
    known = tuple(value for value in known if value)

    ended = 0
    for subscription in subscriptions:
        if subscription.is_live or subscription.status == Subscription.Status.PENDING:
            set_transition(subscription, status=Subscription.Status.CANCELED, reason=Subscription.Reason.ACCOUNT_DELETED, now=now)
            subscription.canceled_at = now
            subscription.cancel_at_period_end = False
            subscription.cancel_reason = ""
            subscription.next_plan = None
            subscription.save()
            ledger.record_revoke(
                subscription=subscription, starts_at=now, ends_at=subscription.end_date, cause=LedgerEntry.Cause.ERASURE, now=now
            )
            void_open_charges(subscription, now=now)
            ended += 1
        elif subscription.cancel_reason:
            subscription.cancel_reason = ""  # free text the customer wrote
            subscription.save(update_fields=["cancel_reason", "updated_at"])
        if subscription.card_id:  # the gateway's id of the person's card: nothing may charge it again
            forget_card_fields(subscription)
            subscription.save(update_fields=[*CARD_FIELDS, "updated_at"])

    ledger.record_erasure(user=user, now=now)  # from here on, money for this account is listed, never granted
    email = anonymous_email(user.pk)
    for checkout in checkouts:
        if checkout.status == Checkout.Status.PENDING:
            checkout.status = Checkout.Status.CANCELED
        checkout.customer_name = ERASED
        checkout.customer_email = email
        checkout.customer_document = ""
        checkout.customer_phone = ""
        checkout.customer_birth_date = None
        if checkout.gateway_response:
            checkout.gateway_response = erase_personal_data(checkout.gateway_response, known=known)
        save_checkout(
            checkout,
            update_fields=[
                "status", "customer_name", "customer_email", "customer_document", "customer_phone",
                "customer_birth_date", "gateway_response", "updated_at",
            ]
        )

    transaction_ids = [c.gateway_transaction_id for c in checkouts if c.gateway_transaction_id]
    # Marketplace (Dias) payments of the person: their subscriptions', the ones that waited for their
    # e-mail (claimed or not), and the ones whose amount matched no plan (listed by payer e-mail).
    emails = {value.strip().lower() for value in [user.email] + [c.customer_email for c in checkouts] if value}
    waiting = list(
        UnclaimedMarketplacePayment.objects.select_for_update(of=("self",))
        .filter(Q(subscription__user_id=user.pk) | Q(email__in=emails))
        .order_by("pk")
    )
    known = tuple({*known, *(record.name for record in waiting if record.name)})
    external_ids = sorted(
        {s.external_id for s in subscriptions if s.external_id}
        | {record.external_id for record in waiting}
        | set(
            ReconciliationItem.objects.filter(gateway__kind="dias", detail__payer_email__in=emails).values_list(
                "transaction_id", flat=True
            )
        )
    )
    for record in waiting:
        record.email = email
        record.name = ERASED if record.name else ""
        record.save(update_fields=["email", "name"])
    marketplace_ids = external_ids + [int(i) for i in external_ids if i.isdigit()]
    events = WebhookEvent.objects.filter(
        Q(checkout__in=checkouts)
        | Q(payload__objectId__in=transaction_ids)
        | Q(provider="dias", payload__id__in=marketplace_ids)
        | Q(provider="dias", payload__externalRef__in=marketplace_ids)
    )
    erased_events = 0
    for event in events:
        event.payload = erase_personal_data(event.payload, known=known)
        event.body = _erase_body(event.body, known)
        event.save(update_fields=["payload", "body"])
        erased_events += 1

    items = ReconciliationItem.objects.filter(
        Q(checkout__in=checkouts) | Q(detail__payer_email__in=emails) | Q(gateway__kind="dias", transaction_id__in=external_ids)
    )
    for item in items:
        item.detail = erase_personal_data(item.detail, known=known)
        item.save(update_fields=["detail"])

    ReminderOptOut.objects.filter(email__in=emails).delete()
    new_key = ordering_key(email)
    outbound = 0
    for event in OutboxEvent.objects.filter(ordering_key__in=[ordering_key(value) for value in emails]):
        event.data = erase_personal_data(event.data, known=known)
        event.ordering_key = new_key  # one key still: pending deliveries keep their order
        event.save(update_fields=["data", "ordering_key"])
        outbound += 1

    return {"subscriptions_ended": ended, "checkouts": len(checkouts), "webhook_events": erased_events, "outbound_events": outbound}


def _erase_body(body: str, known: tuple[str, ...]) -> str:
    try:
        parsed = json.loads(body)
    except ValueError:
        return erase_personal_text(body, known=known)
    return json.dumps(erase_personal_data(parsed, known=known))
