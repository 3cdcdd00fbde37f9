"""
Writing the money ledger (billing.ledger_models.LedgerEntry): one function per
kind of fact, called by the service that makes it happen, inside its
transaction (so a rolled-back change leaves no row, and a committed one
always has its rows). The services are idempotent by their own state
checks; these writers are called only on a real change.

What a money operation must write (docs/billing.md, "Money audit"):

- money that paid a checkout: `record_payment` (a payment row, plus its
  credit and discount rows), and the days it bought: `record_grant`;
- money that arrived and paid nothing: `record_listed`, with the cause;
- money that went back: `record_refund` (refund or chargeback), and the days
  it takes back: `record_revoke` with the refund's checkout;
- days given or taken by a decision (admin, withdrawal, deletion, an
  upgrade replacing a remainder): `record_grant` / `record_revoke`, with
  `actor` and `note` when a person decided.
"""

from __future__ import annotations

from datetime import datetime

from billing.ledger_models import LedgerEntry
from billing.models import Checkout, PaymentGateway, ReconciliationItem, Subscription

Kind = LedgerEntry.Kind
Cause = LedgerEntry.Cause


def write(*entries: LedgerEntry) -> list[LedgerEntry]:
    """Several rows of one change in one INSERT (an activation writes its payment and its days together)."""
    return LedgerEntry.objects.bulk_create(entries)


def record_payment(
    *, checkout: Checkout, now: datetime, transaction_id: str = "", amount_cents: int | None = None, save: bool = True
) -> list[LedgerEntry]:
    """
    Money that paid `checkout` (its total, or `amount_cents`), with the
    checkout's credit and discount beside it; `save=False` returns the rows
    unsaved, for `write` to insert with others.
    """
    common = dict(
        checkout=checkout,
        subscription_id=checkout.subscription_id,
        user_id=checkout.user_id,
        gateway_id=checkout.gateway_id,
        transaction_id=(transaction_id or checkout.paid_transaction_id or checkout.gateway_transaction_id)[:100],
        created_at=now,
    )
    rows = [
        LedgerEntry(
            kind=Kind.PAYMENT, cause=Cause.CHECKOUT,
            amount_cents=checkout.total_cents if amount_cents is None else amount_cents, **common,
        )
    ]
    if checkout.credit_cents:
        rows.append(LedgerEntry(kind=Kind.CREDIT, cause=Cause.UPGRADE, amount_cents=checkout.credit_cents, **common))
    if checkout.discount_cents:
        rows.append(
            LedgerEntry(kind=Kind.DISCOUNT, cause=Cause.CHECKOUT, amount_cents=checkout.discount_cents, coupon_id=checkout.coupon_id, **common)
        )
    return write(*rows) if save else rows


def record_marketplace_payment(
    *, subscription: Subscription, external_id: str, amount_cents: int, now: datetime, save: bool = True
) -> LedgerEntry:
    """A marketplace (Dias) PAID that bought days: a payment keyed by the marketplace's transaction id."""
    entry = LedgerEntry(
        kind=Kind.PAYMENT,
        cause=Cause.MARKETPLACE,
        amount_cents=amount_cents or 0,
        gateway=PaymentGateway.objects.filter(kind=PaymentGateway.Kind.DIAS).first(),
        transaction_id=external_id[:100],
        subscription=subscription,
        user_id=subscription.user_id,
        created_at=now,
    )
    return write(entry)[0] if save else entry


def record_listed(
    *,
    cause: str,
    now: datetime,
    amount_cents: int | None,
    gateway: PaymentGateway | None = None,
    transaction_id: str = "",
    checkout: Checkout | None = None,
    subscription_id: int | None = None,
    user_id: int | None = None,
    item: ReconciliationItem | None = None,
) -> LedgerEntry:
    """Money that arrived and paid nothing: kept, and listed for a person (`item`)."""
    if checkout is not None:
        gateway = gateway or checkout.gateway
        user_id = user_id or checkout.user_id
    return LedgerEntry.objects.create(
        kind=Kind.LISTED,
        cause=cause,
        amount_cents=amount_cents or 0,
        gateway=gateway,
        transaction_id=(transaction_id or "")[:100],
        checkout=checkout,
        subscription_id=subscription_id,
        user_id=user_id,
        reconciliation_item=item,
        created_at=now,
    )


def record_refund(
    *, checkout: Checkout, now: datetime, chargeback: bool = False, transaction_id: str = "", amount_cents: int | None = None
) -> LedgerEntry:
    """
    Money of `checkout` that went back: a refund, or a chargeback / PIX
    dispute (MED). By default the transaction that paid it, for its total; a
    refund of another of its transactions (a duplicate payment, listed) names
    that `transaction_id` and its `amount_cents`: it then changes nothing the
    checkout's own money counts (§9.2 matches refunds by transaction).
    """
    return LedgerEntry.objects.create(
        kind=Kind.CHARGEBACK if chargeback else Kind.REFUND,
        cause=Cause.CHARGEBACK if chargeback else Cause.REFUND,
        amount_cents=checkout.total_cents if amount_cents is None else amount_cents,
        gateway_id=checkout.gateway_id,
        transaction_id=(transaction_id or checkout.paid_transaction_id or checkout.gateway_transaction_id)[:100],
        checkout=checkout,
        subscription_id=checkout.subscription_id,
        user_id=checkout.user_id,
        created_at=now,
    )


def record_chargeback_reversed(*, checkout: Checkout, now: datetime) -> LedgerEntry:
    """A PIX dispute decided for us: the money came back."""
    return LedgerEntry.objects.create(
        kind=Kind.CHARGEBACK_REVERSED,
        cause=Cause.DISPUTE_REVERSED,
        amount_cents=checkout.total_cents,
        gateway_id=checkout.gateway_id,
        transaction_id=(checkout.paid_transaction_id or checkout.gateway_transaction_id)[:100],
        checkout=checkout,
        subscription_id=checkout.subscription_id,
        user_id=checkout.user_id,
        created_at=now,
    )


def record_grant(
    *,
    subscription: Subscription,
    starts_at: datetime,
    ends_at: datetime,
    cause: str,
    now: datetime,
    checkout: Checkout | None = None,
    actor=None,
    note: str = "",
    save: bool = True,
) -> LedgerEntry:
    """Days [starts_at, ends_at) of `subscription`, bought by `checkout` or given by `cause` (an admin: `actor`, `note`)."""
    return _days(Kind.GRANT, subscription=subscription, starts_at=starts_at, ends_at=ends_at, cause=cause, now=now,
                 checkout=checkout, actor=actor, note=note, save=save)


def record_revoke(
    *,
    subscription: Subscription,
    starts_at: datetime,
    ends_at: datetime | None,
    cause: str,
    now: datetime,
    checkout: Checkout | None = None,
    actor=None,
    note: str = "",
    save: bool = True,
) -> LedgerEntry:
    """
    Access taken back from `starts_at` on: every day granted before this row
    that lies past `starts_at` is no longer covered. `ends_at` is the end the
    subscription had (kept for reading; never before `starts_at`).
    """
    ends_at = max(ends_at or starts_at, starts_at)
    return _days(Kind.REVOKE, subscription=subscription, starts_at=starts_at, ends_at=ends_at, cause=cause, now=now,
                 checkout=checkout, actor=actor, note=note, save=save)


def _days(kind, *, subscription, starts_at, ends_at, cause, now, checkout, actor, note, save) -> LedgerEntry:
    """A row of days given or taken (record_grant, record_revoke): `actor` and `note` say who and why."""
    entry = LedgerEntry(
        kind=kind,
        cause=cause,
        starts_at=starts_at,
        ends_at=ends_at,
        checkout=checkout,
        subscription=subscription,
        user_id=subscription.user_id,
        actor=actor if getattr(actor, "pk", None) else None,
        note=(note or "")[:500],
        created_at=now,
    )
    return write(entry)[0] if save else entry


def record_erasure(*, user, now: datetime) -> LedgerEntry:
    """The account was deleted (LGPD): nothing paid after this may reach it (contract §9.8)."""
    return LedgerEntry.objects.create(
        kind=Kind.REVOKE, cause=Cause.ERASURE, starts_at=now, ends_at=now, user_id=user.pk, created_at=now
    )


def record_listed_returned(*, item: ReconciliationItem, now: datetime, chargeback: bool = False) -> LedgerEntry:
    """
    Money listed for a person that went back (the refund or chargeback of a
    duplicate payment): tied to its review item, never to the checkout,
    whose own money (another transaction) is untouched.
    """
    return LedgerEntry.objects.create(
        kind=Kind.CHARGEBACK if chargeback else Kind.REFUND,
        cause=Cause.DUPLICATE,
        amount_cents=item.amount_cents or 0,
        gateway_id=item.gateway_id,
        transaction_id=item.transaction_id[:100],
        reconciliation_item=item,
        user_id=item.checkout.user_id if item.checkout_id else None,
        created_at=now,
    )
