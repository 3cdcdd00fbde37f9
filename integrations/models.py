"""
Outbound webhooks (contract §3b) and the ad platforms' server-side conversions
(contract §5). The outbox rows are written in the transaction of the state
change that causes them (integrations.outbox.emit); delivery happens later, in
a Celery task.
"""

import secrets
import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from billing.fields import EncryptedJSONField, EncryptedTextField

EVENT_TYPES = (
    "checkout.created",
    "checkout.abandoned",
    "payment.paid",
    "payment.refused",
    "payment.refunded",
    "payment.chargedback",
    "subscription.activated",
    "subscription.renewed",
    "subscription.past_due",
    "subscription.canceled",
    "subscription.expired",
    "subscription.trial_started",
)


def new_signing_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


class WebhookEndpoint(models.Model):
    url = models.URLField(_("URL"), max_length=500)
    events = models.JSONField(
        _("events"), default=list, blank=True, help_text=_("Event types sent to this endpoint; empty means all.")
    )
    secret = EncryptedTextField(_("signing secret"), default=new_signing_secret, help_text=_("Stored encrypted; shown once."))
    is_active = models.BooleanField(_("active"), default=True)
    description = models.CharField(_("description"), max_length=200, blank=True)
    # Set at the first failure after a success, cleared by the next success: the admin index
    # lists endpoints failing for longer than FAILING_AFTER.
    failing_since = models.DateTimeField(_("failing since"), null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")
        ordering = ["pk"]

    def __str__(self):
        return self.url

    def wants(self, event_type: str) -> bool:
        return not self.events or event_type in self.events


class OutboxEvent(models.Model):
    """One event, as POSTed (contract §3b); its id is the receivers' dedupe key."""

    id = models.UUIDField(_("event id"), primary_key=True, default=uuid.uuid4, editable=False)
    type = models.CharField(_("type"), max_length=40, db_index=True)
    # The checkout or subscription as the API shows it, with the customer's name, e-mail and
    # phone: personal data, so stored encrypted like the gateway payloads.
    data = EncryptedJSONField(_("data"), help_text=_("Stored encrypted."))
    # Deliveries of events with the same key go out in order ("subscription:12", "checkout:34").
    ordering_key = models.CharField(_("ordering key"), max_length=60, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("outbound event")
        verbose_name_plural = _("outbound events")
        ordering = ["-created_at"]
        indexes = [
            # "an earlier event of this key": one index range, however large the outbox grows
            # (with only created_at indexed, the planner walked every older event).
            models.Index(fields=["ordering_key", "created_at"], name="outbox_event_key_created"),
        ]

    def __str__(self):
        return f"{self.type} {self.id}"


class Delivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        DELIVERED = "delivered", _("Delivered")
        FAILED = "failed", _("Failed (gave up)")

    event = models.ForeignKey(OutboxEvent, verbose_name=_("event"), on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(WebhookEndpoint, verbose_name=_("endpoint"), on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    # When a worker may take it next (backoff, or the lease of a worker sending it now).
    next_attempt_at = models.DateTimeField(_("next attempt at"), default=timezone.now, db_index=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ["-created_at", "-pk"]
        constraints = [models.UniqueConstraint(fields=["event", "endpoint"], name="one_delivery_per_event_endpoint")]
        indexes = [
            models.Index(fields=["next_attempt_at"], condition=Q(status="pending"), name="delivery_due"),
        ]

    def __str__(self):
        return f"{self.event.type} → {self.endpoint}"


class DeliveryAttempt(models.Model):
    delivery = models.ForeignKey(Delivery, verbose_name=_("delivery"), on_delete=models.CASCADE, related_name="attempt_log")
    attempted_at = models.DateTimeField(_("attempted at"), default=timezone.now)
    status_code = models.PositiveIntegerField(_("HTTP status"), null=True, blank=True)
    error = models.CharField(_("error"), max_length=300, blank=True)
    response_excerpt = models.CharField(_("response excerpt"), max_length=500, blank=True)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), default=0)

    class Meta:
        verbose_name = _("delivery attempt")
        verbose_name_plural = _("delivery attempts")
        ordering = ["-attempted_at", "-pk"]

    def __str__(self):
        return f"{self.status_code or self.error} at {self.attempted_at:%Y-%m-%d %H:%M:%S}"

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class TrackingPixels(models.Model):
    """The one row of ad-platform settings (pk 1). Secrets write-only, encrypted like gateway keys."""

    meta_pixel_id = models.CharField(_("Meta Pixel id"), max_length=40, blank=True)
    meta_access_token = EncryptedTextField(_("Meta Conversions API access token"), blank=True)
    ga4_measurement_id = models.CharField(_("GA4 measurement id"), max_length=40, blank=True)
    ga4_api_secret = EncryptedTextField(_("GA4 Measurement Protocol API secret"), blank=True)
    tiktok_pixel_id = models.CharField(_("TikTok pixel id"), max_length=40, blank=True)
    tiktok_access_token = EncryptedTextField(_("TikTok Events API access token"), blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("tracking pixels")
        verbose_name_plural = _("tracking pixels")

    def __str__(self):
        return str(_("Tracking pixels"))

    @classmethod
    def current(cls) -> "TrackingPixels":
        """The settings row, or an unsaved empty one (a getter never writes)."""
        return cls.objects.filter(pk=1).first() or cls(pk=1)

    def platforms(self) -> list[str]:
        """The platforms with both their id and their secret set."""
        configured = {
            "meta": self.meta_pixel_id and self.meta_access_token,
            "ga4": self.ga4_measurement_id and self.ga4_api_secret,
            "tiktok": self.tiktok_pixel_id and self.tiktok_access_token,
        }
        return [name for name, ok in configured.items() if ok]
