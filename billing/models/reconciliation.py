"""Differences between the gateway's records and ours, for a person to look at (billing.reconciliation)."""

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from billing.models.checkouts import Checkout
from billing.models.gateways import PaymentGateway


class ReconciliationItem(models.Model):
    """A difference between the gateway's records and ours, for a person to look at."""

    class Kind(models.TextChoices):
        MISSED_PAYMENT = "missed_payment", _("Paid at the gateway, pending here (fixed)")
        AMOUNT_MISMATCH = "amount_mismatch", _("Amount differs")
        STATUS_MISMATCH = "status_mismatch", _("Status differs")
        UNKNOWN_TRANSACTION = "unknown_transaction", _("Transaction unknown here")
        PARTIAL_PAYMENT = "partial_payment", _("Partial payment")
        MARKETPLACE_AMOUNT_MISMATCH = "marketplace_amount_mismatch", _("Marketplace amount mismatch")
        MISSED_REFUND = "missed_refund", _("Refunded at the gateway, paid here (fixed)")
        VOIDED_CHARGE_PAID = "voided_charge_paid", _("Paid after it was voided (no access given)")
        DISPUTE_NOT_RESTORED = "dispute_not_restored", _("Dispute reversed, access not restored")
        DUPLICATE_PAYMENT = "duplicate_payment", _("Paid twice (a second transaction, to refund)")

    gateway = models.ForeignKey(PaymentGateway, verbose_name=_("gateway"), on_delete=models.PROTECT)
    transaction_id = models.CharField(_("transaction id"), max_length=100)
    checkout = models.ForeignKey(Checkout, verbose_name=_("checkout"), on_delete=models.SET_NULL, null=True, blank=True)
    kind = models.CharField(_("kind"), max_length=30, choices=Kind.choices)
    detail = models.JSONField(_("detail"), default=dict)
    amount_cents = models.PositiveIntegerField(
        _("amount (cents)"), null=True, blank=True, help_text=_("The money this item is about, when known.")
    )
    resolved = models.BooleanField(_("resolved"), default=False)
    found_at = models.DateTimeField(_("found at"), default=timezone.now)

    class Meta:
        verbose_name = _("reconciliation item")
        verbose_name_plural = _("reconciliation items")
        ordering = ["-found_at"]
        constraints = [
            models.UniqueConstraint(fields=["gateway", "transaction_id", "kind"], name="unique_reconciliation_item")
        ]

    def __str__(self):
        return f"{self.get_kind_display()} · {self.transaction_id}"
