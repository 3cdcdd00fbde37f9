"""Marketplace (Dias) payments kept until the owner of their e-mail confirms it."""

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class UnclaimedMarketplacePayment(models.Model):
    """
    A marketplace (Dias) payment whose e-mail belongs to an account not yet
    confirmed: it may be a squatter's (contract §3). Kept here, never lost,
    until the mailbox owner confirms the e-mail; then it is applied as if it
    arrived at that moment (`claimed_at`; the period starts there).
    """

    external_id = models.CharField(_("marketplace transaction id"), max_length=100, unique=True)
    email = models.EmailField(_("payer e-mail"), db_index=True)
    name = models.CharField(_("payer name"), max_length=150, blank=True)
    pending_amount_cents = models.PositiveIntegerField(
        _("amount announced (cents)"), null=True, blank=True, help_text=_("The amount of the marketplace's PENDING, when it came.")
    )
    paid_amount_cents = models.PositiveIntegerField(
        _("amount paid (cents)"), null=True, blank=True, help_text=_("The amount of the marketplace's PAID, when it came.")
    )
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True)
    received_at = models.DateTimeField(_("received at"), default=timezone.now)
    claimed_at = models.DateTimeField(_("claimed at"), null=True, blank=True, db_index=True)
    subscription = models.ForeignKey(
        "Subscription", verbose_name=_("subscription"), on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = _("unclaimed marketplace payment")
        verbose_name_plural = _("unclaimed marketplace payments")
        ordering = ["-received_at"]

    def __str__(self):
        return f"{self.external_id} · {self.email}"
