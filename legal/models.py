from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class DataRequest(models.Model):
    """
    A data subject's request (LGPD art. 18), with its legal deadline: 15 days
    (art. 19, II). The self-service ones (/api/me/data, /api/me/delete) are
    answered at once and recorded done; staff record those received by other
    channels (e-mail, phone) and mark them done.
    """

    class Kind(models.TextChoices):
        ACCESS = "access", _("Copy of the data")
        DELETION = "deletion", _("Deletion of the account")

    class Channel(models.TextChoices):
        SELF_SERVICE = "self_service", _("Self-service (account page or API)")
        STAFF = "staff", _("Received by staff")

    DEADLINE = timedelta(days=15)

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.PROTECT, null=True, blank=True, related_name="data_requests"
    )
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    channel = models.CharField(_("channel"), max_length=20, choices=Channel.choices, default=Channel.STAFF)
    note = models.TextField(_("note"), blank=True, help_text=_("How the request arrived and how it was answered."))
    received_at = models.DateTimeField(_("received at"))
    deadline = models.DateTimeField(_("answer by"))
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("data request")
        verbose_name_plural = _("data requests")
        ordering = ["completed_at", "deadline"]

    def __str__(self):
        return f"{self.get_kind_display()} · {self.received_at:%Y-%m-%d}"

    @property
    def is_open(self) -> bool:
        return self.completed_at is None
