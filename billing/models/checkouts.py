"""A checkout (one purchase: its money, its buyer, its current charge) and the charges it had before."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from billing.fields import EncryptedJSONField, EncryptedTextField
from billing.models.gateways import PaymentGateway
from billing.models.offers import Coupon
from billing.models.plans import OrderBump, Plan
from billing.money import format_brl
from billing.personal_data import mask_cpf
from billing.querysets import CheckoutQuerySet


class Checkout(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        PAID = "paid", _("Paid")
        EXPIRED = "expired", _("Expired")
        FAILED = "failed", _("Failed")
        REFUNDED = "refunded", _("Refunded")
        CANCELED = "canceled", _("Canceled")

    class Purpose(models.TextChoices):
        NEW = "new", _("New subscription")
        RENEWAL = "renewal", _("Renewal")
        UPGRADE = "upgrade", _("Plan upgrade")

    class Method(models.TextChoices):
        PIX = "pix", _("PIX")
        CARD = "card", _("Card")

    public_id = models.UUIDField(_("public id"), default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.PROTECT, null=True, blank=True, related_name="checkouts"
    )
    plan = models.ForeignKey(Plan, verbose_name=_("plan"), on_delete=models.PROTECT, related_name="checkouts")
    order_bumps = models.ManyToManyField(OrderBump, verbose_name=_("order bumps"), blank=True, related_name="checkouts")
    purpose = models.CharField(_("purpose"), max_length=20, choices=Purpose.choices, default=Purpose.NEW)
    subscription = models.ForeignKey(
        "Subscription",
        verbose_name=_("subscription"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="checkouts",
        help_text=_("The subscription this checkout started, renews or upgrades."),
    )
    payment_method = models.CharField(_("payment method"), max_length=10, choices=Method.choices, default=Method.PIX)
    # A card payment: how many installments, and which card (brand and last digits only, never more).
    installments = models.PositiveSmallIntegerField(_("installments"), default=1)
    card_brand = models.CharField(_("card brand"), max_length=20, blank=True)
    card_last_digits = models.CharField(_("card last digits"), max_length=4, blank=True)

    # Money, all in cents, all computed on the server. total = plan + bumps - credit - discount.
    plan_price_cents = models.PositiveIntegerField(_("plan price (cents)"))
    # The plan as sold: activation and upgrade credit read these, never today's plan.
    plan_duration_days = models.PositiveIntegerField(
        _("plan duration (days)"), help_text=_("The plan's duration when this checkout was created.")
    )
    bumps_cents = models.PositiveIntegerField(_("order bumps (cents)"), default=0)
    credit_cents = models.PositiveIntegerField(
        _("credit (cents)"), default=0, help_text=_("Unused value of the current period, for upgrades.")
    )
    coupon = models.ForeignKey(
        Coupon, verbose_name=_("coupon"), on_delete=models.PROTECT, null=True, blank=True, related_name="checkouts"
    )
    discount_cents = models.PositiveIntegerField(
        _("discount (cents)"), default=0, help_text=_("The coupon's discount; it lowers the plan line only.")
    )
    total_cents = models.PositiveIntegerField(_("total (cents)"))
    items = models.JSONField(_("items"), default=list, help_text=_("Snapshot of what was sold, as sent to the gateway."))
    # A free trial: nothing charged, the plan's trial days as the duration sold; paying it starts `trialing`.
    is_trial = models.BooleanField(_("free trial"), default=False)

    customer_name = models.CharField(_("customer name"), max_length=150)
    customer_email = models.EmailField(_("customer e-mail"), db_index=True)
    customer_document = EncryptedTextField(_("customer CPF"), blank=True)
    customer_phone = models.CharField(_("customer phone"), max_length=20, blank=True)
    # A keyed hash of the CPF (billing.personal_data.document_digest): the encrypted column
    # cannot be searched, this can ("new subscribers only", one trial per CPF).
    customer_document_digest = models.CharField(
        _("customer CPF digest"), max_length=64, blank=True, db_index=True, editable=False
    )
    terms_version = models.PositiveIntegerField(
        _("terms version accepted"), null=True, blank=True, help_text=_("The terms of use in force when the buyer checked out.")
    )
    terms_accepted_at = models.DateTimeField(_("terms accepted at"), null=True, blank=True)
    customer_birth_date = models.DateField(
        _("customer birth date"), null=True, blank=True, help_text=_("As declared at checkout (age of at least MIN_AGE).")
    )
    # The buyer's cookie choice (legal.consent) when checking out: the ad platforms' server-side
    # Purchase follows it (integrations.conversions). None: not asked (a renewal, an upgrade).
    analytics_consent = models.BooleanField(
        _("analytics consent"), null=True, blank=True, help_text=_("The buyer accepted analytics cookies when checking out.")
    )
    marketing_consent = models.BooleanField(
        _("marketing consent"), null=True, blank=True, help_text=_("The buyer accepted marketing cookies and pixels when checking out.")
    )
    # Where the sale came from (billing.tracking): {"first": {utm_source, ...}, "last": {...}}.
    tracking = models.JSONField(
        _("tracking"), default=dict, blank=True, help_text=_("Campaign parameters of the first and last visit.")
    )

    gateway = models.ForeignKey(
        PaymentGateway, verbose_name=_("gateway"), on_delete=models.PROTECT, null=True, blank=True, related_name="checkouts"
    )
    gateway_transaction_id = models.CharField(_("gateway transaction id"), max_length=100, blank=True, db_index=True)
    gateway_status = models.CharField(_("gateway status"), max_length=40, blank=True)
    # The gateway's transaction as last seen (the sandbox keeps its side of the charge here). It carries
    # the customer's CPF, phone and e-mail, so it is stored encrypted; the admin shows it masked.
    gateway_response = EncryptedJSONField(
        _("last gateway response"), null=True, blank=True, help_text=_("Stored encrypted; shown masked.")
    )
    pix_code = models.TextField(_("PIX copy-and-paste code"), blank=True)
    pix_url = models.URLField(_("PIX URL"), max_length=500, blank=True)
    pix_expires_at = models.DateTimeField(_("PIX expires at"), null=True, blank=True)

    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True)
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True)
    # Which of the checkout's charges paid it (the current one or a replaced one): another
    # transaction paid for the same checkout is a duplicate payment, listed to be refunded.
    paid_transaction_id = models.CharField(
        _("paid by transaction"),
        max_length=100,
        blank=True,
        help_text=_("The gateway transaction whose payment paid this checkout."),
    )
    is_late = models.BooleanField(
        _("paid late"), default=False, help_text=_("Paid after its charge or its subscription had expired.")
    )
    refunded_at = models.DateTimeField(
        _("refunded at"), null=True, blank=True, help_text=_("When the refund (or chargeback) was confirmed.")
    )
    paid_amount_cents = models.PositiveIntegerField(
        _("amount received (cents)"),
        null=True,
        blank=True,
        help_text=_("What the gateway says arrived of a partial payment; never grants access."),
    )
    # Recovery of unpaid checkouts (billing.services.sweep, CHECKOUT_RECOVERY_MINUTES): how many reminder
    # e-mails went out (the sweep's compare-and-set marker), the claim that sent the last ones, whether the
    # customer reopened it from a reminder, and whether it was paid after one (a recovered sale).
    recovery_reminders_sent = models.PositiveSmallIntegerField(_("recovery reminders sent"), default=0, editable=False)
    recovery_claim = models.UUIDField(_("recovery claim"), null=True, blank=True, editable=False)
    reopened_at = models.DateTimeField(_("reopened at"), null=True, blank=True, editable=False)
    is_recovered = models.BooleanField(_("recovered sale"), default=False, help_text=_("Paid after a reminder e-mail."))
    receipt_sent_at = models.DateTimeField(_("receipt sent at"), null=True, blank=True, editable=False)
    account_created = models.BooleanField(
        _("account created by this payment"),
        default=False,
        editable=False,
        help_text=_("The buyer had no account: this payment created it (the browser that paid may be signed in to it)."),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    objects = CheckoutQuerySet.as_manager()

    class Meta:
        verbose_name = _("checkout")
        verbose_name_plural = _("checkouts")
        ordering = ["-created_at"]
        permissions = [("view_finance", _("Can see finance pages and figures"))]
        constraints = [
            models.UniqueConstraint(
                fields=["gateway", "gateway_transaction_id"],
                condition=~Q(gateway_transaction_id=""),
                name="unique_gateway_transaction",
            ),
            models.CheckConstraint(
                condition=Q(
                    total_cents=models.F("plan_price_cents")
                    + models.F("bumps_cents")
                    - models.F("credit_cents")
                    - models.F("discount_cents")
                ),
                name="checkout_total_adds_up",
            ),
            # Credit and discount lower the plan line only: never into the order bumps.
            models.CheckConstraint(
                condition=Q(plan_price_cents__gte=models.F("credit_cents") + models.F("discount_cents")),
                name="checkout_discount_within_plan_line",
            ),
            # One free trial per e-mail and per CPF: the backstop of two trial requests at once
            # (create_checkout checks earlier purchases; this catches the race between two).
            models.UniqueConstraint(fields=["customer_email"], condition=Q(is_trial=True), name="one_trial_per_email"),
            models.UniqueConstraint(
                fields=["customer_document_digest"],
                condition=Q(is_trial=True) & ~Q(customer_document_digest=""),
                name="one_trial_per_cpf",
            ),
            # At most one open renewal charge per subscription: a second sweep
            # that slipped past the compare-and-set fails instead of billing twice.
            models.UniqueConstraint(
                fields=["subscription"],
                condition=Q(purpose="renewal", status="pending"),
                name="one_pending_renewal_per_subscription",
            ),
        ]
        indexes = [models.Index(fields=["status", "created_at"], name="checkout_status_created")]

    def __str__(self):
        return f"{self.public_id} · {format_brl(self.total_cents)} · {self.get_status_display()}"

    @property
    def total_display(self) -> str:
        return format_brl(self.total_cents)

    @property
    def masked_document(self) -> str:
        return mask_cpf(self.customer_document)


class CheckoutCharge(models.Model):
    """
    A charge of a checkout that was replaced by a fresh one (its PIX expired,
    or its gateway is no longer active). Kept so that a late payment of it is
    still matched to its checkout (billing.services.payments.checkout_for_charge):
    money is never lost because a newer QR code was issued.
    """

    checkout = models.ForeignKey(Checkout, verbose_name=_("checkout"), on_delete=models.PROTECT, related_name="previous_charges")
    gateway = models.ForeignKey(PaymentGateway, verbose_name=_("gateway"), on_delete=models.PROTECT, related_name="+")
    transaction_id = models.CharField(_("gateway transaction id"), max_length=100)
    pix_expires_at = models.DateTimeField(_("PIX expires at"), null=True, blank=True)
    created_at = models.DateTimeField(_("replaced at"), default=timezone.now)

    class Meta:
        verbose_name = _("previous charge")
        verbose_name_plural = _("previous charges")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["gateway", "transaction_id"], name="unique_previous_gateway_transaction")
        ]

    def __str__(self):
        return f"{self.gateway} {self.transaction_id}"


class ChargeAttempt(models.Model):
    """
    One try at creating a charge at a gateway, committed in its own
    transaction BEFORE the gateway is called (billing.services.charges). A
    process killed mid-call (a deploy's SIGKILL, an OOM kill, gunicorn's
    timeout) rolls back everything it had not committed, but not this row:
    the next try sees it and asks the gateway for the charge by
    `external_ref` before it ever creates one. An attempt still `in_flight`
    after the gateway budget is one whose process died (it is then marked
    `abandoned`). PIX charges use the checkout's uuid as `external_ref`; a
    card renewal may use one per attempt.
    """

    class Outcome(models.TextChoices):
        IN_FLIGHT = "in_flight", _("In flight")
        CHARGED = "charged", _("Charged")
        # The gateway may hold a charge (timeout, 5xx, unreadable answer, lookup found nothing).
        UNCONFIRMED = "unconfirmed", _("Unconfirmed")
        FAILED = "failed", _("Failed")
        ABANDONED = "abandoned", _("Abandoned (its process died)")

    checkout = models.ForeignKey(Checkout, verbose_name=_("checkout"), on_delete=models.CASCADE, related_name="charge_attempts")
    gateway = models.ForeignKey(PaymentGateway, verbose_name=_("gateway"), on_delete=models.PROTECT, related_name="+")
    external_ref = models.CharField(_("external reference"), max_length=100, db_index=True)
    started_at = models.DateTimeField(_("started at"))
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    outcome = models.CharField(_("outcome"), max_length=20, choices=Outcome.choices, default=Outcome.IN_FLIGHT)
    transaction_id = models.CharField(_("gateway transaction id"), max_length=100, blank=True)
    error = models.CharField(_("error"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("charge attempt")
        verbose_name_plural = _("charge attempts")
        ordering = ["-started_at", "-pk"]
        constraints = [
            # One create in flight per charge reference: the database says so, not only the row lock.
            models.UniqueConstraint(
                fields=["gateway", "external_ref"], condition=Q(outcome="in_flight"), name="one_charge_attempt_in_flight"
            )
        ]

    def __str__(self):
        return f"{self.external_ref} @ {self.gateway_id}: {self.get_outcome_display()}"
