import secrets
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from billing.fields import EncryptedJSONField, EncryptedTextField
from billing.money import format_brl
from billing.personal_data import mask_cpf
from billing.querysets import CheckoutQuerySet, SubscriptionQuerySet

# The most installments any plan may offer (the card networks' usual ceiling in Brazil).
MAX_INSTALLMENTS = 12


def new_postback_token() -> str:
    return secrets.token_urlsafe(32)


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


class ReminderOptOut(models.Model):
    """An e-mail address that asked for no more reminders of unpaid checkouts (the link in each reminder)."""

    email = models.EmailField(_("e-mail"), unique=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("reminder opt-out")
        verbose_name_plural = _("reminder opt-outs")

    def __str__(self):
        return self.email


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


class CardAttempt(models.Model):
    """
    One card charge sent (or about to be sent) to the gateway: a buyer's
    attempt at the checkout page, or an automatic renewal's charge of the
    saved card. The row is written and committed BEFORE the gateway call
    (`in_flight`), so an answer lost with a killed worker or a timeout is
    looked up by `external_ref` before anything is charged again; the
    answer is applied to it under the lock. A purchase's attempts share the
    checkout's uuid as external_ref (contract §3); a renewal has its own
    external_ref per attempt (contract §8). No card number, CVV or hash is
    ever stored: the brand and last digits are what the gateway returns.
    """

    class Kind(models.TextChoices):
        PURCHASE = "purchase", _("Checkout page")
        RENEWAL = "renewal", _("Automatic renewal")

    class Status(models.TextChoices):
        IN_FLIGHT = "in_flight", _("Sent, answer not yet known")
        PROCESSING = "processing", _("Processing (waiting for the gateway)")
        PAID = "paid", _("Paid")
        REFUSED = "refused", _("Refused")
        ERROR = "error", _("Not charged (gateway error)")
        REFUNDED = "refunded", _("Refunded or charged back")

    # States in which the attempt may still become a payment: at most one per checkout.
    OPEN_STATUSES = (Status.IN_FLIGHT, Status.PROCESSING)

    checkout = models.ForeignKey(Checkout, verbose_name=_("checkout"), on_delete=models.PROTECT, related_name="card_attempts")
    subscription = models.ForeignKey(
        "Subscription", verbose_name=_("subscription"), on_delete=models.PROTECT, null=True, blank=True, related_name="card_attempts"
    )
    gateway = models.ForeignKey(PaymentGateway, verbose_name=_("gateway"), on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices, default=Kind.PURCHASE)
    # 1, 2, 3... per checkout: inserting attempt n+1 is the claim (unique), so two sweeps never both send it.
    number = models.PositiveSmallIntegerField(_("attempt"), default=1)
    external_ref = models.CharField(_("external reference"), max_length=64, db_index=True)
    status = models.CharField(_("result"), max_length=20, choices=Status.choices, default=Status.IN_FLIGHT, db_index=True)
    amount_cents = models.PositiveIntegerField(_("amount (cents)"))
    installments = models.PositiveSmallIntegerField(_("installments"), default=1)
    transaction_id = models.CharField(_("gateway transaction id"), max_length=100, blank=True, db_index=True)
    provider_status = models.CharField(_("gateway status"), max_length=40, blank=True)
    card_brand = models.CharField(_("card brand"), max_length=20, blank=True)
    card_last_digits = models.CharField(_("card last digits"), max_length=4, blank=True)
    refusal_code = models.CharField(_("refusal code"), max_length=40, blank=True)
    refusal_reason = models.CharField(_("refusal reason"), max_length=255, blank=True)
    # The sandbox keeps its side of a card charge here (like Checkout.gateway_response for PIX).
    gateway_response = EncryptedJSONField(_("last gateway response"), null=True, blank=True, help_text=_("Stored encrypted."))
    created_at = models.DateTimeField(_("attempted at"), default=timezone.now, db_index=True)
    answered_at = models.DateTimeField(_("answered at"), null=True, blank=True)

    class Meta:
        verbose_name = _("card attempt")
        verbose_name_plural = _("card attempts")
        ordering = ["-created_at", "-pk"]
        constraints = [
            # One card charge at a time per checkout: a second click, tab or sweep cannot send another
            # while one may still be paying (the compare-and-set claim's backstop).
            models.UniqueConstraint(
                fields=["checkout"], condition=Q(status__in=["in_flight", "processing"]), name="one_open_card_attempt_per_checkout"
            ),
            models.UniqueConstraint(
                fields=["gateway", "transaction_id"], condition=~Q(transaction_id=""), name="unique_card_attempt_transaction"
            ),
            models.UniqueConstraint(fields=["checkout", "number"], name="unique_card_attempt_number"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} · {format_brl(self.amount_cents)} · {self.get_status_display()}"

    @property
    def amount_display(self) -> str:
        return format_brl(self.amount_cents)


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


class ReconciliationItem(models.Model):
    """A difference between the gateway's records and ours, for a person to look at."""

    class Kind(models.TextChoices):
        MISSED_PAYMENT = "missed_payment", _("Paid at the gateway, pending here (fixed)")
        AMOUNT_MISMATCH = "amount_mismatch", _("Amount differs")
        STATUS_MISMATCH = "status_mismatch", _("Status differs")
        UNKNOWN_TRANSACTION = "unknown_transaction", _("Transaction unknown here")
        PARTIAL_PAYMENT = "partial_payment", _("Partial payment")
        MARKETPLACE_AMOUNT_MISMATCH = "marketplace_amount_mismatch", _("Marketplace amount mismatch")
        MISSED_REFUND = "missed_refund", _("Refunded at the gateway, paid here (fixed)")
        VOIDED_CHARGE_PAID = "voided_charge_paid", _("Paid after it was voided (no access given)")
        DISPUTE_NOT_RESTORED = "dispute_not_restored", _("Dispute reversed, access not restored")
        DUPLICATE_PAYMENT = "duplicate_payment", _("Paid twice (a second transaction, to refund)")

    gateway = models.ForeignKey(PaymentGateway, verbose_name=_("gateway"), on_delete=models.PROTECT)
    transaction_id = models.CharField(_("transaction id"), max_length=100)
    checkout = models.ForeignKey(Checkout, verbose_name=_("checkout"), on_delete=models.SET_NULL, null=True, blank=True)
    kind = models.CharField(_("kind"), max_length=30, choices=Kind.choices)
    detail = models.JSONField(_("detail"), default=dict)
    amount_cents = models.PositiveIntegerField(
        _("amount (cents)"), null=True, blank=True, help_text=_("The money this item is about, when known.")
    )
    resolved = models.BooleanField(_("resolved"), default=False)
    found_at = models.DateTimeField(_("found at"), default=timezone.now)

    class Meta:
        verbose_name = _("reconciliation item")
        verbose_name_plural = _("reconciliation items")
        ordering = ["-found_at"]
        constraints = [
            models.UniqueConstraint(fields=["gateway", "transaction_id", "kind"], name="unique_reconciliation_item")
        ]

    def __str__(self):
        return f"{self.get_kind_display()} · {self.transaction_id}"


class UnclaimedMarketplacePayment(models.Model):
    """
    A marketplace (Dias) payment whose e-mail belongs to an account not yet
    confirmed: it may be a squatter's (contract §3). Kept here, never lost,
    until the mailbox owner confirms the e-mail; then it is applied as if it
    arrived at that moment (`claimed_at`; the period starts there).
    """

    external_id = models.CharField(_("marketplace transaction id"), max_length=100, unique=True)
    email = models.EmailField(_("payer e-mail"), db_index=True)
    name = models.CharField(_("payer name"), max_length=150, blank=True)
    pending_amount_cents = models.PositiveIntegerField(
        _("amount announced (cents)"), null=True, blank=True, help_text=_("The amount of the marketplace's PENDING, when it came.")
    )
    paid_amount_cents = models.PositiveIntegerField(
        _("amount paid (cents)"), null=True, blank=True, help_text=_("The amount of the marketplace's PAID, when it came.")
    )
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True)
    received_at = models.DateTimeField(_("received at"), default=timezone.now)
    claimed_at = models.DateTimeField(_("claimed at"), null=True, blank=True, db_index=True)
    subscription = models.ForeignKey(
        "Subscription", verbose_name=_("subscription"), on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = _("unclaimed marketplace payment")
        verbose_name_plural = _("unclaimed marketplace payments")
        ordering = ["-received_at"]

    def __str__(self):
        return f"{self.external_id} · {self.email}"


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


class FinanceDashboard(Checkout):
    """No table of its own: gives the finance dashboard its place in the admin index."""

    class Meta:
        proxy = True
        verbose_name = _("finance dashboard")
        verbose_name_plural = _("finance dashboard")
        default_permissions = ()


# The money ledger and the audit's runs live in their own module (they are billing's models all the same).
from billing.ledger_models import LedgerEntry, MoneyAuditRun  # noqa: F401 - importable as billing.models, like the others
