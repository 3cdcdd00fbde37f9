"""Card charges: one row per attempt sent to the gateway (a purchase or an automatic renewal)."""

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from billing.fields import EncryptedJSONField
from billing.models.checkouts import Checkout
from billing.models.gateways import PaymentGateway
from billing.money import format_brl


class CardAttempt(models.Model):
    """
    One card charge sent (or about to be sent) to the gateway: a buyer's
    attempt at the checkout page, or an automatic renewal's charge of the
    saved card. The row is written and committed BEFORE the gateway call
    (`in_flight`), so an answer lost with a killed worker or a timeout is
    looked up by `external_ref` before anything is charged again; the
    answer is applied to it under the lock. A purchase's attempts share the
    checkout's uuid as external_ref (contract §3); a renewal has its own
    external_ref per attempt (contract §8). No card number, CVV or hash is
    ever stored: the brand and last digits are what the gateway returns.
    """

    class Kind(models.TextChoices):
        PURCHASE = "purchase", _("Checkout page")
        RENEWAL = "renewal", _("Automatic renewal")

    class Status(models.TextChoices):
        IN_FLIGHT = "in_flight", _("Sent, answer not yet known")
        PROCESSING = "processing", _("Processing (waiting for the gateway)")
        PAID = "paid", _("Paid")
        REFUSED = "refused", _("Refused")
        ERROR = "error", _("Not charged (gateway error)")
        REFUNDED = "refunded", _("Refunded or charged back")

    # States in which the attempt may still become a payment: at most one per checkout.
    OPEN_STATUSES = (Status.IN_FLIGHT, Status.PROCESSING)

    checkout = models.ForeignKey(Checkout, verbose_name=_("checkout"), on_delete=models.PROTECT, related_name="card_attempts")
    subscription = models.ForeignKey(
        "Subscription", verbose_name=_("subscription"), on_delete=models.PROTECT, null=True, blank=True, related_name="card_attempts"
    )
    gateway = models.ForeignKey(PaymentGateway, verbose_name=_("gateway"), on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices, default=Kind.PURCHASE)
    # 1, 2, 3... per checkout: inserting attempt n+1 is the claim (unique), so two sweeps never both send it.
    number = models.PositiveSmallIntegerField(_("attempt"), default=1)
    external_ref = models.CharField(_("external reference"), max_length=64, db_index=True)
    status = models.CharField(_("result"), max_length=20, choices=Status.choices, default=Status.IN_FLIGHT, db_index=True)
    amount_cents = models.PositiveIntegerField(_("amount (cents)"))
    installments = models.PositiveSmallIntegerField(_("installments"), default=1)
    transaction_id = models.CharField(_("gateway transaction id"), max_length=100, blank=True, db_index=True)
    provider_status = models.CharField(_("gateway status"), max_length=40, blank=True)
    card_brand = models.CharField(_("card brand"), max_length=20, blank=True)
    card_last_digits = models.CharField(_("card last digits"), max_length=4, blank=True)
    refusal_code = models.CharField(_("refusal code"), max_length=40, blank=True)
    refusal_reason = models.CharField(_("refusal reason"), max_length=255, blank=True)
    # The sandbox keeps its side of a card charge here (like Checkout.gateway_response for PIX).
    gateway_response = EncryptedJSONField(_("last gateway response"), null=True, blank=True, help_text=_("Stored encrypted."))
    created_at = models.DateTimeField(_("attempted at"), default=timezone.now, db_index=True)
    answered_at = models.DateTimeField(_("answered at"), null=True, blank=True)

    class Meta:
        verbose_name = _("card attempt")
        verbose_name_plural = _("card attempts")
        ordering = ["-created_at", "-pk"]
        constraints = [
            # One card charge at a time per checkout: a second click, tab or sweep cannot send another
            # while one may still be paying (the compare-and-set claim's backstop).
            models.UniqueConstraint(
                fields=["checkout"], condition=Q(status__in=["in_flight", "processing"]), name="one_open_card_attempt_per_checkout"
            ),
            models.UniqueConstraint(
                fields=["gateway", "transaction_id"], condition=~Q(transaction_id=""), name="unique_card_attempt_transaction"
            ),
            models.UniqueConstraint(fields=["checkout", "number"], name="unique_card_attempt_number"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} · {format_brl(self.amount_cents)} · {self.get_status_display()}"

    @property
    def amount_display(self) -> str:
        return format_brl(self.amount_cents)
