"""What is sold: the plans and the order bumps offered beside them."""

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from billing.money import format_brl

# The most installments any plan may offer (the card networks' usual ceiling in Brazil).
MAX_INSTALLMENTS = 12


class Plan(models.Model):
    class CardStyle(models.TextChoices):
        DEFAULT = "default", _("Default")
        FEATURED = "featured", _("Featured")
        PREMIUM = "premium", _("Premium")

    name = models.CharField(_("name"), max_length=100)
    price_cents = models.PositiveIntegerField(_("price (cents)"), help_text=_("Price in cents of BRL."))
    duration_days = models.PositiveIntegerField(_("duration (days)"))
    benefits = models.JSONField(
        _("benefits"), default=list, blank=True, help_text=_("Ordered list of {title, subtitle, icon}.")
    )
    cta_text = models.CharField(_("call to action"), max_length=80, default="Assinar agora")
    checkout_url = models.URLField(
        _("external checkout URL"), blank=True, help_text=_("Marketplace link; empty means our own PIX checkout.")
    )
    trial_days = models.PositiveIntegerField(
        _("free trial (days)"), default=0, help_text=_("Days free for a first-time subscriber; 0: no trial.")
    )
    accepts_pix = models.BooleanField(_("accepts PIX"), default=True)
    accepts_card = models.BooleanField(_("accepts card"), default=False)
    max_installments = models.PositiveSmallIntegerField(
        _("maximum installments"),
        default=1,
        help_text=_("Card installments the buyer may choose (1: one payment only); the amount never changes with them."),
    )
    is_active = models.BooleanField(_("active"), default=True)
    display_order = models.PositiveIntegerField(_("display order"), default=0)
    card_style = models.CharField(_("card style"), max_length=20, choices=CardStyle.choices, default=CardStyle.DEFAULT)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("plan")
        verbose_name_plural = _("plans")
        ordering = ["display_order", "price_cents"]
        constraints = [
            models.CheckConstraint(condition=Q(duration_days__gt=0), name="plan_duration_positive"),
            models.CheckConstraint(
                condition=Q(max_installments__gte=1, max_installments__lte=MAX_INSTALLMENTS), name="plan_installments_in_range"
            ),
        ]

    def __str__(self):
        return f"{self.name} ({self.price_display})"

    @property
    def price_display(self) -> str:
        return format_brl(self.price_cents)

    def accepts(self, method: str) -> bool:
        return {"pix": self.accepts_pix, "card": self.accepts_card}.get(method, False)


class OrderBump(models.Model):
    name = models.CharField(_("name"), max_length=100)
    description = models.CharField(_("description"), max_length=255, blank=True)
    price_cents = models.PositiveIntegerField(_("price (cents)"))
    is_active = models.BooleanField(_("active"), default=True)
    display_order = models.PositiveIntegerField(_("display order"), default=0)

    class Meta:
        verbose_name = _("order bump")
        verbose_name_plural = _("order bumps")
        ordering = ["display_order", "pk"]

    def __str__(self):
        return f"{self.name} ({format_brl(self.price_cents)})"

    @property
    def price_display(self) -> str:
        return format_brl(self.price_cents)
