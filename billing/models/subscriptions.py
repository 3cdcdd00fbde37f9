"""A subscription: the access period a paid checkout opens, renews or ends."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from billing.models.gateways import PaymentGateway
from billing.models.offers import Coupon
from billing.models.plans import Plan
from billing.querysets import SubscriptionQuerySet


class Subscription(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        TRIALING = "trialing", _("Free trial")
        ACTIVE = "active", _("Active")
        PAST_DUE = "past_due", _("Past due")
        EXPIRED = "expired", _("Expired")
        CANCELED = "canceled", _("Canceled")
        REFUNDED = "refunded", _("Refunded")

    LIVE_STATUSES = (Status.TRIALING, Status.ACTIVE, Status.PAST_DUE)

    class Reason(models.TextChoices):
        CREATED = "created", _("Created")
        PAID = "paid", _("Paid")
        TRIAL_STARTED = "trial_started", _("Free trial started")
        TRIAL_ENDED = "trial_ended", _("Free trial ended unpaid")
        RENEWED = "renewed", _("Renewed")
        GRACE_STARTED = "grace_started", _("Grace started")
        EXPIRED = "expired", _("Expired")
        NEVER_PAID = "never_paid", _("Never paid")
        CANCELED_BY_USER = "canceled_by_user", _("Canceled by user")
        CANCELED_BY_ADMIN = "canceled_by_admin", _("Canceled by admin")
        REFUNDED = "refunded", _("Refunded")
        PLAN_CHANGED = "plan_changed", _("Plan changed")
        ACTIVATED_BY_ADMIN = "activated_by_admin", _("Activated by admin")
        EXTENDED_BY_ADMIN = "extended_by_admin", _("Extended by admin")
        EXPIRED_BY_ADMIN = "expired_by_admin", _("Expired by admin")
        WITHDRAWN = "withdrawn", _("Withdrawn by the buyer (full refund)")
        ACCOUNT_DELETED = "account_deleted", _("Account deleted by its owner")

    class PlanMatch(models.TextChoices):
        CHECKOUT = "checkout", _("Our checkout")
        EXACT_PRICE = "exact_price", _("Exact price")
        NEAREST_PRICE = "nearest_price", _("Nearest price (fallback)")
        ADMIN = "admin", _("Admin")

    user = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.PROTECT, related_name="subscriptions")
    plan = models.ForeignKey(Plan, verbose_name=_("plan"), on_delete=models.PROTECT, related_name="subscriptions")
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True)
    start_date = models.DateTimeField(_("start date"), null=True, blank=True)
    end_date = models.DateTimeField(_("end date"), null=True, blank=True, db_index=True)
    cancel_at_period_end = models.BooleanField(_("cancel at period end"), default=False)
    cancel_reason = models.TextField(_("cancel reason"), blank=True)
    canceled_at = models.DateTimeField(_("canceled at"), null=True, blank=True)
    next_plan = models.ForeignKey(
        Plan,
        verbose_name=_("plan at next renewal"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("A scheduled downgrade, applied when the subscription renews."),
    )
    external_id = models.CharField(_("external id"), max_length=100, blank=True, help_text=_("Marketplace transaction id."))
    external_amount_cents = models.PositiveIntegerField(
        _("marketplace amount (cents)"),
        null=True,
        blank=True,
        help_text=_("The amount the marketplace announced (PENDING); its PAID must confirm it."),
    )
    plan_match_rule = models.CharField(_("plan matched by"), max_length=20, choices=PlanMatch.choices, default=PlanMatch.CHECKOUT)
    last_reason = models.CharField(_("last transition"), max_length=30, choices=Reason.choices, default=Reason.CREATED)
    last_transition_at = models.DateTimeField(_("last transition at"), default=timezone.now)
    # The sweep's compare-and-set marker: the end_date a renewal charge was
    # issued for. A second sweep sees it equal to end_date and issues nothing.
    renewal_issued_for = models.DateTimeField(
        _("renewal issued for end date"), null=True, blank=True, editable=False
    )
    # A recurring coupon (Coupon.renewals) the subscription was sold with; its renewals are discounted
    # while `coupon_renewals_left` is above 0, or always when it is empty.
    coupon = models.ForeignKey(
        Coupon, verbose_name=_("recurring coupon"), on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    coupon_renewals_left = models.PositiveIntegerField(_("discounted renewals left"), null=True, blank=True)
    # The saved card of automatic renewals (contract §8): the gateway's card id and what is shown of
    # it, nothing else. Empty `card_id`: no saved card, renewals are PIX.
    card_gateway = models.ForeignKey(
        PaymentGateway, verbose_name=_("card gateway"), on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    card_id = models.CharField(_("saved card id"), max_length=100, blank=True, help_text=_("The gateway's id of the card."))
    card_brand = models.CharField(_("card brand"), max_length=20, blank=True)
    card_last_digits = models.CharField(_("card last digits"), max_length=4, blank=True)
    card_exp_month = models.PositiveSmallIntegerField(_("card expiry month"), null=True, blank=True)
    card_exp_year = models.PositiveSmallIntegerField(_("card expiry year"), null=True, blank=True)
    # Tags the rows one sweep run claimed, so it reads back exactly those.
    sweep_claim = models.UUIDField(_("sweep claim"), null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    objects = SubscriptionQuerySet.as_manager()

    class Meta:
        verbose_name = _("subscription")
        verbose_name_plural = _("subscriptions")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["user"],
                condition=Q(status__in=["trialing", "active", "past_due"]),
                name="one_live_subscription_per_user",
            ),
            models.UniqueConstraint(fields=["external_id"], condition=~Q(external_id=""), name="unique_subscription_external_id"),
            models.CheckConstraint(
                condition=Q(start_date__isnull=True) | Q(end_date__isnull=True) | Q(end_date__gt=models.F("start_date")),
                name="subscription_end_after_start",
            ),
        ]
        indexes = [models.Index(fields=["status", "end_date"], name="subscription_status_end")]

    def __str__(self):
        return f"{self.user} · {self.plan.name} · {self.get_status_display()}"

    @property
    def is_live(self) -> bool:
        return self.status in self.LIVE_STATUSES

    @property
    def has_saved_card(self) -> bool:
        return bool(self.card_id)

    @property
    def auto_renew(self) -> bool:
        """A saved card will be charged at end_date (contract §8): never when set to cancel at period end."""
        return self.has_saved_card and self.is_live and not self.cancel_at_period_end

    def days_left(self, now=None) -> int:
        if not self.end_date:
            return 0
        return max(0, (self.end_date - (now or timezone.now())).days)
