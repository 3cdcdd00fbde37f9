"""The gateways' notifications as received (verify, store, process: billing.webhooks)."""

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from billing.fields import EncryptedTextField
from billing.models.checkouts import Checkout
from billing.models.gateways import PaymentGateway


class WebhookEvent(models.Model):
    class Outcome(models.TextChoices):
        RECEIVED = "received", _("Received")
        PROCESSED = "processed", _("Processed")
        IGNORED = "ignored", _("Ignored")
        FAILED = "failed", _("Failed")

    provider = models.CharField(_("provider"), max_length=20, choices=PaymentGateway.Kind.choices)
    event_id = models.CharField(_("event id"), max_length=128, help_text=_("The provider's id, or a hash of the body."))
    headers = models.JSONField(_("headers"), default=dict)
    # The body as received, encrypted: it carries the customer's CPF, phone and e-mail. Processing
    # re-parses it; the payload beside it is masked before it is stored (billing.personal_data).
    body = EncryptedTextField(_("raw body"), help_text=_("Stored encrypted; shown masked."))
    payload = models.JSONField(
        _("parsed payload"), null=True, blank=True, help_text=_("Personal data masked before storing.")
    )
    received_at = models.DateTimeField(_("received at"), default=timezone.now, db_index=True)
    outcome = models.CharField(_("outcome"), max_length=20, choices=Outcome.choices, default=Outcome.RECEIVED, db_index=True)
    error = models.TextField(_("error"), blank=True)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    processed_at = models.DateTimeField(_("processed at"), null=True, blank=True)
    # When the retry task may take the event again (FAILED: backoff; RECEIVED: a
    # worker that died mid-way); empty once done. Selected in the query, indexed.
    next_attempt_at = models.DateTimeField(_("next attempt at"), null=True, blank=True, db_index=True)
    checkout = models.ForeignKey(
        Checkout, verbose_name=_("checkout"), on_delete=models.SET_NULL, null=True, blank=True, related_name="webhook_events"
    )

    class Meta:
        verbose_name = _("webhook event")
        verbose_name_plural = _("webhook events")
        ordering = ["-received_at"]
        constraints = [models.UniqueConstraint(fields=["provider", "event_id"], name="unique_provider_event")]

    def __str__(self):
        return f"{self.get_provider_display()} {self.event_id} ({self.get_outcome_display()})"
