"""
Receipts (recibo, Código Civil art. 320; contract §3): what one confirmed
payment bought, from whom, how and when it was paid. A read: the e-mail
(billing.notifications.send_receipt), `GET /api/me/receipts` and the printable
page of the account all build it here, in the language active at the call.

Every paid checkout with money in it has one (a free trial or a 100% coupon
moved no money: none), and so has every marketplace (Dias) payment that
bought days: it has no checkout of ours, so its receipt is read from its
ledger payment (billing.ledger.record_marketplace_payment), keyed by the
marketplace's transaction id. Labels are rendered in the active language; the
checkout's own snapshot (prices, duration, bumps as sold) is what it shows,
never today's plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from billing.ledger_models import LedgerEntry
from billing.models import Checkout, Subscription
from billing.money import format_brl
from config.seller import Seller, get_seller


@dataclass(frozen=True)
class ReceiptLine:
    description: str
    amount_cents: int

    @property
    def amount_display(self) -> str:
        return format_brl(self.amount_cents)


@dataclass(frozen=True)
class Receipt:
    checkout_id: str
    seller: Seller
    payer_name: str
    payer_email: str
    payer_document: str  # masked
    description: str
    lines: list[ReceiptLine]
    amount_cents: int
    method: str  # "pix", "card" or "marketplace"
    method_display: str
    card: dict | None
    installments: int
    paid_at: datetime  # in America/Sao_Paulo
    access_until: datetime | None
    transaction_id: str
    receipt_url: str
    account_url: str

    @property
    def amount_display(self) -> str:
        return format_brl(self.amount_cents)


def has_receipt(checkout: Checkout) -> bool:
    return checkout.paid_at is not None and checkout.total_cents > 0 and checkout.status in (Checkout.Status.PAID, Checkout.Status.REFUNDED)


def receipt_path(checkout: Checkout) -> str:
    return reverse("billing:receipt", kwargs={"checkout_id": checkout.public_id})


def _card_of(checkout: Checkout) -> dict | None:
    # Card payments (contract §3) keep brand and last digits on the checkout; PIX ones have none.
    brand = getattr(checkout, "card_brand", "")
    last_digits = getattr(checkout, "card_last_digits", "")
    if checkout.payment_method != Checkout.Method.CARD or not (brand or last_digits):
        return None
    return {"brand": brand, "last_digits": last_digits}


def _description(checkout: Checkout) -> str:
    days = ngettext("%(days)d day", "%(days)d days", checkout.plan_duration_days) % {"days": checkout.plan_duration_days}
    if checkout.purpose == Checkout.Purpose.RENEWAL:
        return _("%(plan)s · renewal · %(days)s") % {"plan": checkout.plan.name, "days": days}
    if checkout.purpose == Checkout.Purpose.UPGRADE:
        return _("%(plan)s · plan change · %(days)s") % {"plan": checkout.plan.name, "days": days}
    return _("%(plan)s · %(days)s") % {"plan": checkout.plan.name, "days": days}


def order_lines(checkout: Checkout) -> list[ReceiptLine]:
    """What a checkout sells, line by line as sold (plan, credit, coupon, bumps); the receipt and the checkout page's summary."""
    lines = [ReceiptLine(_description(checkout), checkout.plan_price_cents)]
    if checkout.credit_cents:
        lines.append(ReceiptLine(_("Credit for the unused days of the previous plan"), -checkout.credit_cents))
    if checkout.discount_cents:
        code = checkout.coupon.code if checkout.coupon_id else ""
        lines.append(ReceiptLine(_("Coupon discount %(code)s") % {"code": code}, -checkout.discount_cents))
    # The bumps as sold: the snapshot's lines after the plan's.
    lines += [ReceiptLine(item["title"], item["unit_price_cents"] * item.get("quantity", 1)) for item in checkout.items[1:]]
    return lines


def _method_display(method: str, card: dict | None, installments: int) -> str:
    if method == Checkout.Method.CARD and card:
        text = _("Card %(brand)s ending in %(digits)s") % {"brand": card["brand"].title(), "digits": card["last_digits"]}
        if installments > 1:
            text += " · " + _("%(count)d installments") % {"count": installments}
        return text
    if method == Checkout.Method.CARD:
        return _("Card")
    return "PIX"


def build_receipt(checkout: Checkout) -> Receipt:
    """The receipt of a paid checkout (has_receipt), its labels in the active language."""
    card = _card_of(checkout)
    installments = getattr(checkout, "installments", 1) or 1
    subscription = checkout.subscription
    return Receipt(
        checkout_id=str(checkout.public_id),
        seller=get_seller(),
        payer_name=checkout.customer_name,
        payer_email=checkout.customer_email,
        payer_document=checkout.masked_document,
        description=_description(checkout),
        lines=order_lines(checkout),
        amount_cents=checkout.total_cents,
        method=checkout.payment_method,
        method_display=_method_display(checkout.payment_method, card, installments),
        card=card,
        installments=installments,
        paid_at=timezone.localtime(checkout.paid_at),
        access_until=timezone.localtime(subscription.end_date) if subscription and subscription.end_date else None,
        transaction_id=checkout.paid_transaction_id or checkout.gateway_transaction_id,
        receipt_url=settings.SITE_URL + receipt_path(checkout),
        account_url=settings.SITE_URL + reverse("billing:account"),
    )


def build_marketplace_receipt(*, subscription: Subscription, amount_cents: int, paid_at: datetime, transaction_id: str, payer_name: str, payer_email: str) -> Receipt:
    """
    The receipt of a marketplace payment (Dias): no checkout of ours, so what
    the postback said (amount, payer) and the plan it bought; the marketplace
    keeps the payer's CPF. `subscription`: the one whose access it paid.
    """
    plan = subscription.plan
    account_url = settings.SITE_URL + reverse("billing:account")
    receipt_url = settings.SITE_URL + reverse("billing:marketplace-receipt", kwargs={"transaction_id": transaction_id})
    days = ngettext("%(days)d day", "%(days)d days", plan.duration_days) % {"days": plan.duration_days}
    description = _("%(plan)s · %(days)s") % {"plan": plan.name, "days": days}
    return Receipt(
        checkout_id="",
        seller=get_seller(),
        payer_name=payer_name,
        payer_email=payer_email,
        payer_document="",
        description=description,
        lines=[ReceiptLine(description, amount_cents)],
        amount_cents=amount_cents,
        method="marketplace",
        method_display=_("Marketplace"),
        card=None,
        installments=1,
        paid_at=timezone.localtime(paid_at),
        access_until=timezone.localtime(subscription.end_date) if subscription.end_date else None,
        transaction_id=transaction_id,
        receipt_url=receipt_url,
        account_url=account_url,
    )


def list_receipts(*, user):
    """The user's paid checkouts with money in them, newest payment first."""
    return (
        Checkout.objects.of_customer(user)
        .filter(status__in=[Checkout.Status.PAID, Checkout.Status.REFUNDED], paid_at__isnull=False, total_cents__gt=0)
        .select_related("plan", "coupon", "subscription")
        .order_by("-paid_at", "-pk")
    )


def get_receipt_checkout(*, user, checkout_id) -> Checkout | None:
    return list_receipts(user=user).filter(public_id=checkout_id).first()


def _marketplace_payments(*, user):
    return (
        LedgerEntry.objects.filter(user=user, kind=LedgerEntry.Kind.PAYMENT, cause=LedgerEntry.Cause.MARKETPLACE, amount_cents__gt=0)
        .select_related("subscription__plan")
        .order_by("-created_at", "-pk")
    )


def _marketplace_receipt(entry: LedgerEntry, *, user) -> Receipt:
    return build_marketplace_receipt(
        subscription=entry.subscription, amount_cents=entry.amount_cents, paid_at=entry.created_at,
        transaction_id=entry.transaction_id, payer_name=user.name or user.email, payer_email=user.email,
    )


def list_marketplace_receipts(*, user, limit: int | None = None) -> list[Receipt]:
    """
    The user's marketplace payments as receipts, newest first, in one query
    (`GET /api/me/receipts` and the account's payment history); `limit`: the
    newest that many.
    """
    entries = _marketplace_payments(user=user)
    if limit is not None:
        entries = entries[:limit]
    return [_marketplace_receipt(entry, user=user) for entry in entries]


def list_all_receipts(*, user) -> list[Receipt]:
    """
    Every confirmed payment of the user, ours and the marketplace's, newest
    first, as receipts in the active language (`GET /api/me/receipts`).
    """
    receipts = [build_receipt(checkout) for checkout in list_receipts(user=user)]
    receipts += list_marketplace_receipts(user=user)
    return sorted(receipts, key=lambda receipt: receipt.paid_at, reverse=True)


def get_marketplace_receipt(*, user, transaction_id: str) -> Receipt | None:
    entry = _marketplace_payments(user=user).filter(transaction_id=transaction_id).first()
    return _marketplace_receipt(entry, user=user) if entry else None
