"""Offers on top of the price: coupons, and the addresses that opted out of unpaid-checkout reminders."""

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from billing.models.plans import Plan
from billing.money import format_brl


class Coupon(models.Model):
    """
    A discount on the plan line of a checkout (never on order bumps). Its code
    is matched case-insensitively (stored upper-case). Uses are counted when a
    checkout that carries it is paid; pending checkouts holding it count
    against `max_uses` until they expire (billing.services.offers).
    """

    class Kind(models.TextChoices):
        PERCENT = "percent", _("Percent")
        AMOUNT = "amount", _("Fixed amount")

    code = models.CharField(_("code"), max_length=40, unique=True, help_text=_("Matched without regard to case."))
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, default=Kind.PERCENT)
    value = models.PositiveIntegerField(
        _("value"), help_text=_("Percent (1 to 100) or an amount in cents of BRL, by kind.")
    )
    plans = models.ManyToManyField(
        Plan, verbose_name=_("plans"), blank=True, related_name="coupons", help_text=_("Empty: every plan.")
    )
    starts_at = models.DateTimeField(_("starts at"), default=timezone.now)
    ends_at = models.DateTimeField(_("ends at"), null=True, blank=True)
    max_uses = models.PositiveIntegerField(_("maximum uses"), null=True, blank=True, help_text=_("Empty: no limit."))
    uses = models.PositiveIntegerField(_("uses"), default=0, editable=False, help_text=_("Paid checkouts that used it."))
    new_subscribers_only = models.BooleanField(
        _("new subscribers only"), default=False, help_text=_("Only for who never had a paid subscription (by e-mail and by CPF).")
    )
    renewals = models.PositiveIntegerField(
        _("discounted renewals"),
        null=True,
        blank=True,
        default=0,
        help_text=_("Renewals also discounted: 0 = the first payment only; empty = every renewal."),
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("coupon")
        verbose_name_plural = _("coupons")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(value__gt=0), name="coupon_value_positive"),
            models.CheckConstraint(condition=~Q(kind="percent") | Q(value__lte=100), name="coupon_percent_at_most_100"),
            models.CheckConstraint(
                condition=Q(ends_at__isnull=True) | Q(ends_at__gt=models.F("starts_at")), name="coupon_ends_after_start"
            ),
        ]

    def __str__(self):
        return self.code

    def save(self, *args, **kwargs):
        self.code = (self.code or "").strip().upper()
        super().save(*args, **kwargs)

    @staticmethod
    def discount_for(*, kind: str, value: int, price_cents: int) -> int:
        """
        The one discount rule: percent rounded half up, or a fixed amount; never
        more than the price it lowers (so never a total below zero).
        """
        if price_cents <= 0:
            return 0
        discount = (price_cents * value + 50) // 100 if kind == Coupon.Kind.PERCENT else value
        return max(0, min(discount, price_cents))

    @property
    def value_display(self) -> str:
        return f"{self.value}%" if self.kind == self.Kind.PERCENT else format_brl(self.value)


class ReminderOptOut(models.Model):
    """An e-mail address that asked for no more reminders of unpaid checkouts (the link in each reminder)."""

    email = models.EmailField(_("e-mail"), unique=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("reminder opt-out")
        verbose_name_plural = _("reminder opt-outs")

    def __str__(self):
        return self.email
