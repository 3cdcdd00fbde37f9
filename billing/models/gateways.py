"""The payment gateways (one active for our own checkout) and their postback tokens."""

import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from billing.fields import EncryptedTextField


def new_postback_token() -> str:
    return secrets.token_urlsafe(32)


class PaymentGateway(models.Model):
    class Kind(models.TextChoices):
        SANDBOX = "sandbox", _("Sandbox (fake payments)")
        JUNGLEPAY = "junglepay", _("JunglePay (PIX)")
        DIAS = "dias", _("Dias Marketplace (external checkout)")

    # Gateways that serve our own checkout; exactly one of them is active.
    INTERNAL_KINDS = (Kind.SANDBOX, Kind.JUNGLEPAY)

    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices, unique=True)
    public_key = models.CharField(_("public key"), max_length=255, blank=True)
    secret_key = EncryptedTextField(_("secret key"), blank=True, help_text=_("Stored encrypted; never shown."))
    postback_token = models.CharField(_("postback token"), max_length=64, default=new_postback_token, unique=True)
    # Charges issued before a rotation carry the old token in their postbackUrl (the
    # provider keeps the URL each charge was created with): it stays accepted for
    # POSTBACK_TOKEN_GRACE after the rotation, so in-flight charges are not orphaned.
    previous_postback_token = models.CharField(_("previous postback token"), max_length=64, blank=True, editable=False)
    postback_token_rotated_at = models.DateTimeField(_("postback token rotated at"), null=True, blank=True, editable=False)
    is_active = models.BooleanField(_("active"), default=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("payment gateway")
        verbose_name_plural = _("payment gateways")
        constraints = [
            # One active gateway for internal checkouts, enforced by the database.
            models.UniqueConstraint(
                fields=["is_active"],
                condition=Q(is_active=True, kind__in=["sandbox", "junglepay"]),
                name="one_active_internal_gateway",
            )
        ]

    def __str__(self):
        return self.get_kind_display()

    @property
    def is_internal(self) -> bool:
        return self.kind in self.INTERNAL_KINDS

    @property
    def masked_secret(self) -> str:
        secret = self.effective_secret_key
        if not secret:
            return ""
        return "•" * 8 + secret[-4:] if len(secret) > 8 else "•" * 8

    @property
    def effective_secret_key(self) -> str:
        """The environment overrides the stored key (contract §2)."""
        if self.kind == self.Kind.JUNGLEPAY and settings.JUNGLEPAY_SECRET_KEY:
            return settings.JUNGLEPAY_SECRET_KEY
        return self.secret_key or ""

    # How long the token before the last rotation keeps authenticating postbacks:
    # longer than a PIX charge lives (1 day) plus the provider's retries.
    POSTBACK_TOKEN_GRACE = timedelta(days=3)

    def rotate_postback_token(self, *, now=None) -> None:
        self.previous_postback_token = self.postback_token
        self.postback_token_rotated_at = now or timezone.now()
        self.postback_token = new_postback_token()

    def accepted_postback_tokens(self, *, now) -> list[str]:
        """The current token, and the previous one while its grace period lasts."""
        tokens = [self.postback_token]
        if (
            self.previous_postback_token
            and self.postback_token_rotated_at is not None
            and now < self.postback_token_rotated_at + self.POSTBACK_TOKEN_GRACE
        ):
            tokens.append(self.previous_postback_token)
        return tokens

    # Where each provider posts its notifications (contract §3).
    WEBHOOK_PATHS = {
        Kind.SANDBOX: "/api/webhook/sandbox",
        Kind.JUNGLEPAY: "/api/webhook/junglepay",
        Kind.DIAS: "/api/webhook/dias/payment-sucess",
    }

    @property
    def postback_url(self) -> str:
        """The URL to paste into the provider's panel, token included."""
        path = self.WEBHOOK_PATHS.get(self.kind, f"/api/webhook/{self.kind}")
        return f"{settings.SITE_URL}{path}?token={self.postback_token}"
