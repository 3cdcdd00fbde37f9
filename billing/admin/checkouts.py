"""
Checkouts: read-only money records, their filters (status, claim, campaign) and the
CSV export (CPF masked).
"""

import csv

from django.contrib import admin
from django.db.models.fields.json import KT
from django.http import StreamingHttpResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from billing.admin.access import FinanceOnlyMixin
from billing.admin.display import (
    card_attempts_html,
    format_phone,
    items_table,
    masked_json,
    short_datetime,
    short_id,
    status_badge,
    tracking_text,
)
from billing.models import Checkout
from billing.money import format_brl
from billing.tracking import TRACKING_KEYS

CSV_COLUMNS = [
    ("public_id", _("public id")),
    ("created_at", _("created at")),
    ("paid_at", _("paid at")),
    ("status", _("status")),
    ("purpose", _("purpose")),
    ("payment_method", _("payment method")),
    ("plan", _("plan")),
    ("plan_price_cents", _("plan price (cents)")),
    ("bumps_cents", _("order bumps (cents)")),
    ("credit_cents", _("credit (cents)")),
    ("total_cents", _("total (cents)")),
    ("total", _("total")),
    ("customer_name", _("customer name")),
    ("customer_email", _("customer e-mail")),
    ("customer_cpf", _("customer CPF")),
    ("gateway", _("gateway")),
    ("gateway_transaction_id", _("gateway transaction id")),
    ("is_late", _("paid late")),
    *[(f"last_{key}", f"{key} (last)") for key in TRACKING_KEYS],
    *[(f"first_{key}", f"{key} (first)") for key in TRACKING_KEYS],
]


class _Echo:
    def write(self, value):
        return value


def _csv_row(checkout: Checkout) -> list:
    def when(value):
        return timezone.localtime(value).isoformat() if value else ""

    return [
        str(checkout.public_id), when(checkout.created_at), when(checkout.paid_at), checkout.status, checkout.purpose,
        checkout.payment_method, checkout.plan.name, checkout.plan_price_cents, checkout.bumps_cents,
        checkout.credit_cents, checkout.total_cents, format_brl(checkout.total_cents), checkout.customer_name,
        checkout.customer_email, checkout.masked_document,  # never the full CPF
        checkout.gateway.kind if checkout.gateway_id else "", checkout.gateway_transaction_id,
        "1" if checkout.is_late else "0",
        *[(checkout.tracking or {}).get("last", {}).get(key, "") for key in TRACKING_KEYS],
        *[(checkout.tracking or {}).get("first", {}).get(key, "") for key in TRACKING_KEYS],
    ]


class UnclaimedFilter(admin.SimpleListFilter):
    """Guest payments waiting for their e-mail's account to be confirmed (contract §3)."""

    title = _("claim")
    parameter_name = "unclaimed"

    def lookups(self, request, model_admin):
        return [("yes", _("Paid, waiting for a confirmed owner"))]

    def queryset(self, request, queryset):
        return queryset.unclaimed() if self.value() == "yes" else queryset


class _LastTouchFilter(admin.SimpleListFilter):
    """Checkouts by a last-touch campaign parameter; the choices are the values seen (one query)."""

    key = ""
    choices_limit = 100

    def lookups(self, request, model_admin):
        lookup = f"tracking__last__{self.key}"
        values = (
            Checkout.objects.exclude(**{f"{lookup}__isnull": True})
            .annotate(value=KT(lookup))
            .values_list("value", flat=True)
            .distinct()
            .order_by("value")[: self.choices_limit]
        )
        return [(value, value) for value in values if value]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(**{f"tracking__last__{self.key}": self.value()})
        return queryset


class UtmSourceFilter(_LastTouchFilter):
    title = "utm_source"
    parameter_name = "utm_source"
    key = "utm_source"


class UtmCampaignFilter(_LastTouchFilter):
    title = "utm_campaign"
    parameter_name = "utm_campaign"
    key = "utm_campaign"


@admin.register(Checkout)
class CheckoutAdmin(FinanceOnlyMixin, admin.ModelAdmin):
    # What an operator scans first, in one line each at 1366 px; the rest is on the checkout's page.
    list_display = ["id_admin", "customer_email", "plan_admin", "total_admin", "status_admin", "method_admin", "paid_admin"]
    list_filter = [
        "status", UnclaimedFilter, "payment_method", "gateway", "purpose", "is_late", "is_trial", "is_recovered", "coupon",
        UtmSourceFilter, UtmCampaignFilter, ("created_at", admin.DateFieldListFilter), ("paid_at", admin.DateFieldListFilter),
    ]
    search_fields = ["customer_email", "=public_id", "=gateway_transaction_id"]
    date_hierarchy = "created_at"
    list_select_related = ["plan", "gateway"]
    actions = ["export_csv"]
    change_list_template = "admin/billing/checkout/change_list.html"
    fieldsets = [
        (None, {"fields": ["public_id", "status_admin", "purpose", "is_late", "is_trial", "is_recovered", "recovery_reminders_sent", "created_at", "paid_at", "updated_at"]}),
        (_("Money"), {"fields": ["plan", "order_bumps", "plan_price_admin", "bumps_admin", "credit_admin", "coupon", "discount_admin", "total_admin", "items_admin"]}),
        (_("Customer"), {"fields": ["user", "customer_name", "customer_email", "masked_document", "phone_admin", "subscription"]}),
        (_("Gateway"), {"fields": ["payment_method", "gateway", "gateway_transaction_id", "gateway_status", "pix_expires_at", "gateway_response_admin"]}),
        (_("Card"), {"fields": ["installments", "card_brand", "card_last_digits", "card_attempts_admin"]}),
        (_("Source"), {"fields": ["tracking_admin"]}),
    ]

    def get_readonly_fields(self, request, obj=None):
        return [f for fs in self.fieldsets for f in fs[1]["fields"]]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # read-only; refunds and activations come from the gateway or the services

    @admin.display(description=_("id"), ordering="public_id")
    def id_admin(self, obj):
        return short_id(obj.public_id)

    @admin.display(description=_("plan"), ordering="plan__name")
    def plan_admin(self, obj):
        return obj.plan.name

    @admin.display(description=_("total"), ordering="total_cents")
    def total_admin(self, obj):
        return obj.total_display

    @admin.display(description=_("status"), ordering="status")
    def status_admin(self, obj):
        return status_badge(obj.status, obj.get_status_display())

    @admin.display(description=_("payment method"), ordering="payment_method")
    def method_admin(self, obj):
        return obj.get_payment_method_display()

    @admin.display(description=_("paid at"), ordering="paid_at")
    def paid_admin(self, obj):
        return short_datetime(obj.paid_at)

    @admin.display(description=_("customer phone"))
    def phone_admin(self, obj):
        return format_phone(obj.customer_phone)

    @admin.display(description=_("plan price"))
    def plan_price_admin(self, obj):
        return format_brl(obj.plan_price_cents)

    @admin.display(description=_("order bumps"))
    def bumps_admin(self, obj):
        return format_brl(obj.bumps_cents)

    @admin.display(description=_("credit"))
    def credit_admin(self, obj):
        return format_brl(obj.credit_cents)

    @admin.display(description=_("discount"))
    def discount_admin(self, obj):
        return format_brl(obj.discount_cents)

    @admin.display(description=_("customer CPF"))
    def masked_document(self, obj):
        return obj.masked_document or "—"

    @admin.display(description=_("items"))
    def items_admin(self, obj):
        return items_table(obj.items)

    @admin.display(description=_("last gateway response"))
    def gateway_response_admin(self, obj):
        return masked_json(obj.gateway_response)

    @admin.display(description=_("card attempts"))
    def card_attempts_admin(self, obj):
        return card_attempts_html(obj.card_attempts.all())

    @admin.display(description=_("tracking (first and last touch)"))
    def tracking_admin(self, obj):
        return tracking_text(obj.tracking)

    @admin.action(description=_("Export selected checkouts as CSV (CPF masked)"), permissions=["view"])
    def export_csv(self, request, queryset):
        writer = csv.writer(_Echo())
        rows = queryset.select_related("plan", "gateway").order_by("-created_at").iterator(chunk_size=2000)

        def lines():
            yield writer.writerow([str(label) for _, label in CSV_COLUMNS])
            for checkout in rows:
                yield writer.writerow(_csv_row(checkout))

        stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
        response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="checkouts-{stamp}.csv"'
        return response


