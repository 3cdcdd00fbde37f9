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


class LegalDocument(models.Model):
    """
    A version of the terms of use or the privacy policy, edited in the admin
    in pt-BR and English. Published versions are never edited: a change is a
    new version, so what a buyer accepted (Checkout.terms_version) stays readable.
    """

    class Kind(models.TextChoices):
        TERMS = "terms", _("Terms of use")
        PRIVACY = "privacy", _("Privacy policy")

    kind = models.CharField(_("document"), max_length=20, choices=Kind.choices)
    version = models.PositiveIntegerField(_("version"), editable=False)
    title_pt_br = models.CharField(_("title (Portuguese)"), max_length=200)
    body_pt_br = models.TextField(_("text (Portuguese)"), help_text=_("Plain text; blank lines separate paragraphs."))
    title_en = models.CharField(_("title (English)"), max_length=200, blank=True)
    body_en = models.TextField(_("text (English)"), blank=True)
    published_at = models.DateTimeField(_("published at"), null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("legal page")
        verbose_name_plural = _("legal pages")
        ordering = ["kind", "-version"]
        constraints = [models.UniqueConstraint(fields=["kind", "version"], name="unique_legal_document_version")]

    def __str__(self):
        return f"{self.get_kind_display()} v{self.version}"

    def text_for(self, language: str | None) -> tuple[str, str]:
        """(title, body) in `language`; Portuguese when there is no English text."""
        if (language or "").lower().startswith("en") and self.body_en:
            return self.title_en or self.title_pt_br, self.body_en
        return self.title_pt_br, self.body_pt_br


class ConsentRecord(models.Model):
    """A visitor's cookie choice (accept, reject or chosen categories), kept as proof of consent."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.CASCADE, null=True, blank=True, related_name="consents"
    )
    visitor_id = models.CharField(_("visitor id"), max_length=64, db_index=True, help_text=_("Random id in the visitor's consent cookie."))
    analytics = models.BooleanField(_("analytics cookies"), default=False)
    marketing = models.BooleanField(_("marketing cookies and pixels"), default=False)
    privacy_version = models.PositiveIntegerField(_("privacy policy version"), null=True, blank=True)
    decided_at = models.DateTimeField(_("decided at"))

    class Meta:
        verbose_name = _("cookie consent")
        verbose_name_plural = _("cookie consents")
        ordering = ["-decided_at"]

    def __str__(self):
        return f"{self.visitor_id[:8]} · {self.decided_at:%Y-%m-%d %H:%M}"
