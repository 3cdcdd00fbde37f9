"""
The money ledger's tables (re-exported by billing.models, so they are
billing's models): `LedgerEntry`, the append-only record of every grant of
days and every movement of money, and `MoneyAuditRun`, the last runs of the
money audit. Writers live in billing.ledger, the audit in billing.audit.

Beside the billing/models/ package, whose modules hold the other models.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from billing.money import format_brl


class AppendOnlyError(Exception):
    """A ledger row is never changed nor deleted: a correction is a new row."""


class LedgerEntryQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError("ledger entries are append-only")

    def delete(self):
        raise AppendOnlyError("ledger entries are append-only")


class LedgerEntry(models.Model):
    """
    One fact about money or access, written by the service that made it
    happen, in the same transaction (billing.ledger). Never updated, never
    deleted. It holds no personal data (ids, amounts, dates, codes), so an
    account's erasure leaves it as it is.

    - Money (`amount_cents` > 0 or 0, never negative; the kind says which way):
      `payment` paid a checkout (or a marketplace purchase); `listed` arrived
      but paid nothing: kept for a person (`cause` says why: duplicate, void
      charge, after the end, after deletion, an amount that matches nothing,
      partial); `refund`, `chargeback` went back; `chargeback_reversed` came
      back (a PIX dispute decided for us); `credit` and `discount` lowered a
      checkout's price (an upgrade's credit, a coupon).
    - Days: `grant` gives [starts_at, ends_at) of a subscription (`cause`:
      a payment, a trial, the marketplace, an admin with `actor` and `note`);
      `revoke` takes back [starts_at, ends_at) (a refund, a withdrawal, an
      admin's cancel or expire, an upgrade replacing the remainder it
      credited, the account's deletion).
    """

    class Kind(models.TextChoices):
        PAYMENT = "payment", _("Payment")
        LISTED = "listed", _("Payment listed for a person")
        REFUND = "refund", _("Refund")
        CHARGEBACK = "chargeback", _("Chargeback")
        CHARGEBACK_REVERSED = "chargeback_reversed", _("Chargeback reversed")
        CREDIT = "credit", _("Upgrade credit")
        DISCOUNT = "discount", _("Coupon discount")
        GRANT = "grant", _("Days granted")
        REVOKE = "revoke", _("Days revoked")

    class Cause(models.TextChoices):
        # grants
        NEW = "new", _("New purchase")
        RENEWAL = "renewal", _("Renewal")
        UPGRADE = "upgrade", _("Upgrade")
        LATE = "late", _("Paid after the period ended")
        TRIAL = "trial", _("Free trial")
        FREE = "free", _("Nothing to pay (coupon or credit)")
        MARKETPLACE = "marketplace", _("Marketplace")
        ADMIN_ACTIVATE = "admin_activate", _("Activated by admin")
        ADMIN_EXTEND = "admin_extend", _("Extended by admin")
        BACKFILL = "backfill", _("Backfilled from existing records")
        # revokes
        REFUND = "refund", _("Refund")
        CHARGEBACK = "chargeback", _("Chargeback or dispute")
        WITHDRAWAL = "withdrawal", _("Withdrawal")
        ADMIN_CANCEL = "admin_cancel", _("Canceled by admin")
        ADMIN_EXPIRE = "admin_expire", _("Expired by admin")
        REPLACED = "replaced", _("Replaced by an upgrade")
        ERASURE = "erasure", _("Account deleted")
        DISPUTE_REVERSED = "dispute_reversed", _("Dispute decided for us")
        # listings (money kept for a person)
        DUPLICATE = "duplicate", _("Paid twice")
        VOIDED = "voided", _("Void charge paid")
        AFTER_END = "after_end", _("Paid after the subscription ended")
        AFTER_DELETION = "after_deletion", _("Paid after the account was deleted")
        AMOUNT_MISMATCH = "amount_mismatch", _("Amount matches nothing")
        PARTIAL = "partial", _("Partial payment")
        # payments, credits, discounts
        CHECKOUT = "checkout", _("Checkout")

    kind = models.CharField(_("kind"), max_length=24, choices=Kind.choices)
    cause = models.CharField(_("cause"), max_length=24, choices=Cause.choices)
    amount_cents = models.PositiveBigIntegerField(_("amount (cents)"), default=0)
    starts_at = models.DateTimeField(_("starts at"), null=True, blank=True)
    ends_at = models.DateTimeField(_("ends at"), null=True, blank=True)
    gateway = models.ForeignKey(
        "billing.PaymentGateway", verbose_name=_("gateway"), on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    transaction_id = models.CharField(_("gateway transaction id"), max_length=100, blank=True)
    # Money records stay for the years the law asks (PROTECT, like the checkout's own links);
    # the user link goes with a hard-deleted account (SET_NULL): the rows name no person.
    checkout = models.ForeignKey(
        "billing.Checkout", verbose_name=_("checkout"), on_delete=models.PROTECT, null=True, blank=True, related_name="ledger_entries"
    )
    subscription = models.ForeignKey(
        "billing.Subscription",
        verbose_name=_("subscription"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="ledger_entries",
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    coupon = models.ForeignKey(
        "billing.Coupon", verbose_name=_("coupon"), on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reconciliation_item = models.ForeignKey(
        "billing.ReconciliationItem", verbose_name=_("listed as"), on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # An admin's grant or revoke: who and why (the when is created_at).
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("by"), on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    note = models.CharField(_("why"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("recorded at"), default=timezone.now, db_index=True)

    objects = LedgerEntryQuerySet.as_manager()

    class Meta:
        verbose_name = _("ledger entry")
        verbose_name_plural = _("money ledger")
        ordering = ["pk"]
        indexes = [
            models.Index(fields=["subscription", "kind"], name="ledger_subscription_kind"),
            models.Index(fields=["checkout", "kind"], name="ledger_checkout_kind"),
            models.Index(fields=["gateway", "transaction_id"], name="ledger_transaction"),
            models.Index(fields=["user", "kind"], name="ledger_user_kind"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(kind__in=["grant", "revoke"]) | Q(starts_at__isnull=False, ends_at__isnull=False),
                name="ledger_days_have_a_period",
            ),
        ]

    def __str__(self):
        if self.kind in (self.Kind.GRANT, self.Kind.REVOKE):
            return f"{self.get_kind_display()} · {self.get_cause_display()} · {self.starts_at:%Y-%m-%d} → {self.ends_at:%Y-%m-%d}"
        return f"{self.get_kind_display()} · {self.get_cause_display()} · {format_brl(self.amount_cents)}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not self._state.adding:
            raise AppendOnlyError("ledger entries are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("ledger entries are append-only")


class MoneyAuditRun(models.Model):
    """One run of the money audit (billing.audit): when, how long, and what it found."""

    started_at = models.DateTimeField(_("started at"), default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    since = models.DateTimeField(_("since"), null=True, blank=True)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), default=0)
    queries = models.PositiveIntegerField(_("queries"), default=0)
    violation_count = models.PositiveIntegerField(_("violations"), default=0)
    # {"1": 0, "2": 3, ...} and the first violations, as printed (codes, messages and row ids).
    counts = models.JSONField(_("violations per invariant"), default=dict)
    summary = models.JSONField(_("violations found"), default=list)

    class Meta:
        verbose_name = _("money audit")
        verbose_name_plural = _("money audit")
        ordering = ["-started_at"]

    def __str__(self):
        return f"{self.started_at:%Y-%m-%d %H:%M} · {self.violation_count}"
