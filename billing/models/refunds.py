"""Money owed back: refund requests of withdrawn subscriptions (CDC art. 49)."""

from datetime import timedelta

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from billing.models.checkouts import Checkout
from billing.models.subscriptions import Subscription
from billing.money import format_brl


class RefundRequest(models.Model):
    """
    Money we owe back: one paid checkout of a subscription the buyer withdrew
    from (CDC art. 49). Where the gateway refunds through its API (the
    sandbox) it closes at once, when its `refunded` postback arrives; where it
    has none (JunglePay) it waits for a person, who refunds at the provider and
    marks it done, before `deadline`. Either way it closes through
    `billing.services.refund_checkout`, the one refund path.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Refund pending")
        REFUNDED = "refunded", _("Refunded")

    class ClosedBy(models.TextChoices):
        GATEWAY = "gateway", _("Gateway postback")
        ADMIN = "admin", _("Marked done by staff")

    # How long staff have to refund by hand what the gateway cannot refund itself.
    DEADLINE = timedelta(days=7)

    checkout = models.OneToOneField(
        Checkout, verbose_name=_("checkout"), on_delete=models.PROTECT, related_name="refund_request"
    )
    subscription = models.ForeignKey(
        Subscription, verbose_name=_("subscription"), on_delete=models.PROTECT, related_name="refund_requests"
    )
    amount_cents = models.PositiveIntegerField(_("amount (cents)"))
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True)
    requested_at = models.DateTimeField(_("requested at"), default=timezone.now)
    deadline = models.DateTimeField(_("refund by"))
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    closed_by = models.CharField(_("closed by"), max_length=20, choices=ClosedBy.choices, blank=True)

    class Meta:
        verbose_name = _("refund request")
        verbose_name_plural = _("refund requests")
        ordering = ["status", "deadline"]

    def __str__(self):
        return f"{format_brl(self.amount_cents)} · {self.get_status_display()}"

    @property
    def amount_display(self) -> str:
        return format_brl(self.amount_cents)
