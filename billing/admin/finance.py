"""
The finance console. Every state change goes through billing.services and is
written to the admin history (LogEntry); money pages (dashboard, checkouts,
subscriptions) need the `billing.view_finance` permission on top of the
model permissions.
"""

import csv
import json

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models.fields.json import KT
from django.http import HttpResponse, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import localize
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from billing import selectors, services
from billing.admin.access import has_finance_permission
from billing.admin.forms import ExtendDaysForm, OrderBumpAdminForm, PaymentGatewayAdminForm, PlanAdminForm
from billing.admin.payments import replay_webhook_events
from billing.models import CardAttempt, Checkout, FinanceDashboard, OrderBump, PaymentGateway, Plan, Subscription, WebhookEvent
from billing.money import format_brl
from billing.personal_data import mask_personal_data, mask_personal_text
from billing.tracking import TRACKING_KEYS
from config.errors import DomainError


class FinanceOnlyMixin:
    """Money pages: the model permission and the finance permission, both."""

    def has_view_permission(self, request, obj=None):
        return has_finance_permission(request.user) and super().has_view_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return has_finance_permission(request.user) and super().has_change_permission(request, obj)

    def has_add_permission(self, request):
        return has_finance_permission(request.user) and super().has_add_permission(request)

    def has_delete_permission(self, request, obj=None):
        return False  # money records are never deleted


def _masked_json(value):
    """A provider payload for people to read: CPFs, phones and e-mails masked (billing.personal_data)."""
    return format_html("<pre>{}</pre>", json.dumps(mask_personal_data(value), indent=2, ensure_ascii=False))


def _run_service(modeladmin, request, queryset, service, message, **kwargs):
    """Calls `service` per row, logs each change in the admin history and reports counts."""
    done, failed = 0, []
    for obj in queryset:
        try:
            changed = service(**{modeladmin.service_arg: obj}, **kwargs)
        except DomainError as exc:
            failed.append(f"#{obj.pk}: {exc.message}")
            continue
        modeladmin.log_change(request, changed, message)
        done += 1
    if done:
        modeladmin.message_user(
            request, ngettext("%(count)d row updated.", "%(count)d rows updated.", done) % {"count": done}, messages.SUCCESS
        )
    if failed:
        modeladmin.message_user(request, gettext("Not changed: %(list)s") % {"list": "; ".join(failed)}, messages.ERROR)


# ---------------------------------------------------------------------------
# Plans and order bumps
# ---------------------------------------------------------------------------


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    form = PlanAdminForm
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_display = ["name", "price_admin", "duration_days", "trial_days", "is_active", "accepts_pix", "accepts_card", "display_order", "card_style"]
    list_editable = ["display_order"]
    list_filter = ["is_active", "accepts_pix", "accepts_card", "card_style"]
    search_fields = ["name"]
    fieldsets = [
        (None, {"fields": ["name", "price", "duration_days", "trial_days", "is_active", "display_order"]}),
        (_("Sales page"), {"fields": ["benefits", "cta_text", "card_style"]}),
        (_("Payment"), {"fields": ["accepts_pix", "accepts_card", "max_installments", "checkout_url"]}),
    ]

    @admin.display(description=_("price"), ordering="price_cents")
    def price_admin(self, obj):
        return obj.price_display

    def has_delete_permission(self, request, obj=None):
        # A plan that was sold is only ever deactivated.
        if obj is not None and (obj.checkouts.exists() or obj.subscriptions.exists()):
            return False
        return super().has_delete_permission(request, obj)


@admin.register(OrderBump)
class OrderBumpAdmin(admin.ModelAdmin):
    form = OrderBumpAdminForm
    list_display = ["name", "price_admin", "is_active", "display_order"]
    list_filter = ["is_active"]
    search_fields = ["name"]
    fields = ["name", "description", "price", "is_active", "display_order"]

    @admin.display(description=_("price"), ordering="price_cents")
    def price_admin(self, obj):
        return obj.price_display

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.checkouts.exists():
            return False
        return super().has_delete_permission(request, obj)


# ---------------------------------------------------------------------------
# Gateways
# ---------------------------------------------------------------------------


@admin.register(PaymentGateway)
class PaymentGatewayAdmin(admin.ModelAdmin):
    form = PaymentGatewayAdminForm
    service_arg = "gateway"
    list_display = ["__str__", "is_active", "masked_secret_admin", "postback_url_admin", "updated_at"]
    readonly_fields = ["is_active", "masked_secret_admin", "postback_url_admin", "created_at", "updated_at"]
    actions = ["activate", "deactivate", "rotate_token"]

    def get_fields(self, request, obj=None):
        fields = ["kind", "public_key", "new_secret_key", "clear_secret_key", "masked_secret_admin", "is_active"]
        if obj is not None:
            fields += ["postback_url_admin", "created_at", "updated_at"]
        return fields

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "kind"] if obj is not None else self.readonly_fields

    @admin.display(description=_("secret key"))
    def masked_secret_admin(self, obj):
        return obj.masked_secret or "—"

    @admin.display(description=_("postback URL"))
    def postback_url_admin(self, obj):
        if not obj.pk:
            return "—"
        return format_html(
            '<input type="text" readonly value="{}" size="90" onclick="this.select()" aria-label="{}">',
            obj.postback_url,
            gettext("postback URL"),
        )

    @admin.action(description=_("Activate (the one gateway for our checkout)"), permissions=["change"])
    def activate(self, request, queryset):
        if queryset.filter(kind__in=PaymentGateway.INTERNAL_KINDS).count() > 1:
            self.message_user(request, gettext("Choose one internal gateway to activate."), messages.ERROR)
            return
        _run_service(self, request, queryset, services.activate_gateway, gettext("Activated."))

    @admin.action(description=_("Deactivate"), permissions=["change"])
    def deactivate(self, request, queryset):
        _run_service(self, request, queryset, services.deactivate_gateway, gettext("Deactivated."))

    @admin.action(description=_("Rotate the postback token (paste the new URL at the provider)"), permissions=["change"])
    def rotate_token(self, request, queryset):
        _run_service(self, request, queryset, services.rotate_postback_token, gettext("Postback token rotated."))


# ---------------------------------------------------------------------------
# Checkouts: read-only money records
# ---------------------------------------------------------------------------

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


def card_attempts_html(attempts):
    """Each card attempt for people: when, amount, installments, card, result and the bank's reason."""
    rows = list(attempts.order_by("-created_at", "-pk")[:30])
    if not rows:
        return "—"
    return format_html_join(
        mark_safe("<br>"),
        "{} · {} · {}× · {} · <strong>{}</strong>{}",
        (
            (
                timezone.localtime(a.created_at).strftime("%d/%m/%Y %H:%M"),
                a.amount_display,
                a.installments,
                f"{a.card_brand.title()} •••• {a.card_last_digits}" if a.card_last_digits else "—",
                a.get_status_display(),
                f" · {a.refusal_reason} ({a.refusal_code})" if a.status == CardAttempt.Status.REFUSED else "",
            )
            for a in rows
        ),
    )


@admin.register(Checkout)
class CheckoutAdmin(FinanceOnlyMixin, admin.ModelAdmin):
    list_display = ["public_id", "created_at", "customer_email", "plan", "total_admin", "payment_method", "status", "purpose", "is_late", "gateway"]
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
        (None, {"fields": ["public_id", "status", "purpose", "is_late", "is_trial", "is_recovered", "recovery_reminders_sent", "created_at", "paid_at", "updated_at"]}),
        (_("Money"), {"fields": ["plan", "order_bumps", "plan_price_admin", "bumps_admin", "credit_admin", "coupon", "discount_admin", "total_admin", "items_admin"]}),
        (_("Customer"), {"fields": ["user", "customer_name", "customer_email", "masked_document", "customer_phone", "subscription"]}),
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

    @admin.display(description=_("total"), ordering="total_cents")
    def total_admin(self, obj):
        return obj.total_display

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
        return format_html("<pre>{}</pre>", json.dumps(obj.items, indent=2, ensure_ascii=False))

    @admin.display(description=_("last gateway response"))
    def gateway_response_admin(self, obj):
        return _masked_json(obj.gateway_response)

    @admin.display(description=_("card attempts"))
    def card_attempts_admin(self, obj):
        return card_attempts_html(obj.card_attempts.all())

    @admin.display(description=_("tracking (first and last touch)"))
    def tracking_admin(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.tracking or {}, indent=2, ensure_ascii=False))

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


# ---------------------------------------------------------------------------
# Subscriptions
# ---------------------------------------------------------------------------


@admin.register(Subscription)
class SubscriptionAdmin(FinanceOnlyMixin, admin.ModelAdmin):
    service_arg = "subscription"
    list_display = ["pk", "user", "plan", "status", "start_date", "end_date", "cancel_at_period_end", "next_plan", "last_reason", "last_transition_at"]
    list_filter = ["status", "plan", "cancel_at_period_end", "last_reason", "plan_match_rule", ("end_date", admin.DateFieldListFilter)]
    search_fields = ["user__email", "=external_id"]
    list_select_related = ["user", "plan", "next_plan"]
    raw_id_fields = ["user"]
    date_hierarchy = "end_date"
    actions = ["activate", "extend_days", "cancel_now", "expire"]
    readonly_on_change = [
        "user", "plan", "status", "start_date", "end_date", "cancel_at_period_end", "cancel_reason", "canceled_at",
        "next_plan", "external_id", "plan_match_rule", "last_reason", "last_transition_at", "created_at", "updated_at",
        "saved_card_admin", "checkouts_admin", "renewal_attempts_admin",
    ]

    def get_fields(self, request, obj=None):
        return self.readonly_on_change if obj is not None else ["user", "plan"]

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_on_change if obj is not None else []

    def save_model(self, request, obj, form, change):
        # Only creation gets here (everything else is read-only): a pending
        # subscription, to be started with the "activate" action.
        obj.status = Subscription.Status.PENDING
        obj.plan_match_rule = Subscription.PlanMatch.ADMIN
        super().save_model(request, obj, form, change)

    @admin.display(description=_("saved card"))
    def saved_card_admin(self, obj):
        if not obj.card_id:
            return "—"
        automatic = gettext("renews automatically") if obj.auto_renew else gettext("not charged automatically")
        return f"{obj.card_brand.title()} •••• {obj.card_last_digits} · {obj.card_exp_month:02d}/{obj.card_exp_year} · {automatic}"

    @admin.display(description=_("card renewal attempts"))
    def renewal_attempts_admin(self, obj):
        return card_attempts_html(obj.card_attempts.filter(kind=CardAttempt.Kind.RENEWAL))

    @admin.display(description=_("checkouts"))
    def checkouts_admin(self, obj):
        rows = obj.checkouts.order_by("-created_at")[:20]
        if not rows:
            return "—"
        return format_html_join(
            mark_safe("<br>"),
            '<a href="{}">{}</a> · {} · {} · {}{}',
            (
                (
                    reverse("admin:billing_checkout_change", args=[c.pk]),
                    timezone.localtime(c.created_at).strftime("%Y-%m-%d"),
                    c.get_purpose_display(),
                    c.total_display,
                    c.get_status_display(),
                    " · " + gettext("paid late") if c.is_late else "",
                )
                for c in rows
            ),
        )

    @admin.action(description=_("Activate (a new period from now)"), permissions=["change"])
    def activate(self, request, queryset):
        message = gettext("Activated by admin.")
        _run_service(self, request, queryset, services.activate_subscription, message, actor=request.user, reason=message)

    @admin.action(description=_("Cancel now (access ends at once)"), permissions=["change"])
    def cancel_now(self, request, queryset):
        message = gettext("Canceled by admin.")
        _run_service(self, request, queryset, services.cancel_subscription_now, message, actor=request.user, reason=message)

    @admin.action(description=_("Expire now"), permissions=["change"])
    def expire(self, request, queryset):
        message = gettext("Expired by admin.")
        _run_service(self, request, queryset, services.expire_subscription, message, actor=request.user, reason=message)

    @admin.action(description=_("Extend by N days…"), permissions=["change"])
    def extend_days(self, request, queryset):
        form = ExtendDaysForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            days = form.cleaned_data["days"]
            message = gettext("Extended by %(days)d days.") % {"days": days}
            _run_service(
                self, request, queryset, services.extend_subscription, message, days=days, actor=request.user, reason=message,
            )
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Extend subscriptions"),
            "opts": self.model._meta,
            "subscriptions": queryset.select_related("user", "plan"),
            "form": form,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
            "action": "extend_days",
        }
        return TemplateResponse(request, "admin/billing/subscription/extend_days.html", context)


# ---------------------------------------------------------------------------
# Webhook events (the payments code adds its replay action here)
# ---------------------------------------------------------------------------


@admin.register(WebhookEvent)
class WebhookEventAdmin(FinanceOnlyMixin, admin.ModelAdmin):
    """Payment events carry customers' data and money: finance staff only, personal data masked."""

    list_display = ["received_at", "provider", "event_id", "outcome", "attempts", "checkout", "processed_at"]
    list_filter = ["provider", "outcome", ("received_at", admin.DateFieldListFilter)]
    search_fields = ["=event_id", "checkout__customer_email"]
    list_select_related = ["checkout"]
    fields = ["provider", "event_id", "outcome", "error", "attempts", "received_at", "processed_at", "checkout", "headers_admin", "payload_admin", "body_admin"]
    readonly_fields = fields
    actions = [replay_webhook_events]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("headers"))
    def headers_admin(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.headers, indent=2, ensure_ascii=False))

    @admin.display(description=_("parsed payload"))
    def payload_admin(self, obj):
        return _masked_json(obj.payload)  # masked when stored; masked again for rows stored before that

    @admin.display(description=_("raw body"))
    def body_admin(self, obj):
        try:
            parsed = json.loads(obj.body)
        except ValueError:
            return format_html("<pre>{}</pre>", mask_personal_text(obj.body))
        return _masked_json(parsed)


# ---------------------------------------------------------------------------
# Finance dashboard (a proxy model, so it is listed in the admin index)
# ---------------------------------------------------------------------------


@admin.register(FinanceDashboard)
class FinanceDashboardAdmin(admin.ModelAdmin):
    def has_view_permission(self, request, obj=None):
        return has_finance_permission(request.user)

    def has_module_permission(self, request):
        return has_finance_permission(request.user)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        return [path("", self.admin_site.admin_view(self.changelist_view), name="billing_financedashboard_changelist")]

    def changelist_view(self, request, extra_context=None):
        if not has_finance_permission(request.user):
            raise PermissionDenied
        offers = selectors.get_offer_figures()
        table = request.GET.get("csv")
        if table in OFFER_CSV_TABLES:
            return _offer_csv(table, offers)
        figures = selectors.get_finance_figures()
        method_rows, renewal_methods = selectors.get_method_figures()
        pct = lambda value: localize(value) + "%" if value is not None else "—"  # a display helper
        context = {
            "method_rows": [
                {
                    "label": Checkout.Method(row.method).label,
                    "checkouts": row.checkouts,
                    "paid": row.paid,
                    "conversion": pct(row.conversion_pct),
                    "revenue": format_brl(row.revenue_cents),
                }
                for row in method_rows
            ],
            "renewal_methods": renewal_methods,
            "card_renewal_success": pct(renewal_methods.card_success_pct),
            "pix_renewal_success": pct(renewal_methods.pix_success_pct),
            **self.admin_site.each_context(request),
            "title": gettext("Finance dashboard"),
            "opts": self.model._meta,
            "figures": figures,
            "day_chart": selectors.bar_chart(figures.revenue_by_day, label_format="d/m"),
            "month_chart": selectors.bar_chart(figures.revenue_by_month, label_format="M/y"),
            "money": {
                "revenue_30d": format_brl(figures.revenue_30d_cents),
                "mrr": format_brl(figures.mrr_cents),
                "pending_pix": format_brl(figures.pending_pix_cents),
                "renewals_due": format_brl(figures.renewals_due_7d_cents),
                "partial_payments": format_brl(figures.partial_payments_cents),
                "refunds_30d": format_brl(figures.refunds_30d_cents),
                "pending_refunds": format_brl(figures.pending_refunds_cents),
            },
            "conversion": localize(figures.conversion_pct) if figures.conversion_pct is not None else "—",
            "churn": localize(figures.churn_pct) if figures.churn_pct is not None else "—",
            "offers": offers,
            "offer_money": {
                "recovered": format_brl(offers.recovered_30d_cents),
                "mrr_net": format_brl(max(figures.mrr_cents - offers.mrr_discount_cents, 0)),
                "mrr_discount": format_brl(offers.mrr_discount_cents),
            },
            "trial_conversion": localize(offers.trial_conversion_pct) if offers.trial_conversion_pct is not None else "—",
            "coupon_rows": [
                {
                    "row": row,
                    "discount": format_brl(row.discount_cents),
                    "conversion": localize(row.conversion_pct) if row.conversion_pct is not None else "—",
                }
                for row in offers.coupons
            ],
            "funnel_rows": [
                {
                    "row": row,
                    "opened_pct": round(100 * row.opened / row.issued) if row.issued else 0,
                    "paid_pct": round(100 * row.paid / row.issued) if row.issued else 0,
                }
                for row in offers.funnel
            ],
            "sources": [
                {
                    "utm_source": row.utm_source or "—",
                    "utm_campaign": row.utm_campaign or "—",
                    "checkouts": row.checkouts,
                    "paid": row.paid,
                    "revenue": format_brl(row.revenue_cents),
                    "conversion": localize(row.conversion_pct) if row.conversion_pct is not None else "—",
                }
                for row in figures.by_source
            ],
        }
        return TemplateResponse(request, "admin/billing/finance_dashboard.html", context)


OFFER_CSV_TABLES = ("coupons", "funnel")


def _offer_csv(table: str, offers) -> HttpResponse:
    """The dashboard's offer tables as CSV (`?csv=coupons`, `?csv=funnel`)."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{table}.csv"'
    writer = csv.writer(response)
    if table == "coupons":
        writer.writerow([gettext("coupon"), gettext("checkouts"), gettext("paid"), gettext("discount (cents)"), gettext("uses")])
        for row in offers.coupons:
            writer.writerow([row.code, row.checkouts, row.paid, row.discount_cents, row.uses])
    else:
        writer.writerow([gettext("month"), gettext("issued"), gettext("opened"), gettext("paid")])
        for row in offers.funnel:
            writer.writerow([row.month.strftime("%Y-%m"), row.issued, row.opened, row.paid])
    return response
