"""
Subscriptions: read-only records whose actions (activate, extend, cancel, expire)
call billing.services and are written to the admin history.
"""


from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from billing import services
from billing.admin.access import FinanceOnlyMixin
from billing.admin.actions import run_service
from billing.admin.display import card_attempts_html, short_datetime, short_id, status_badge
from billing.admin.forms import ExtendDaysForm
from billing.models import CardAttempt, Subscription


@admin.register(Subscription)
class SubscriptionAdmin(FinanceOnlyMixin, admin.ModelAdmin):
    service_arg = "subscription"
    list_display = ["pk", "user", "plan_admin", "status_admin", "start_admin", "end_admin", "cancel_at_period_end"]
    list_filter = ["status", "plan", "cancel_at_period_end", "last_reason", "plan_match_rule", ("end_date", admin.DateFieldListFilter)]
    search_fields = ["user__email", "=external_id"]
    list_select_related = ["user", "plan"]
    raw_id_fields = ["user"]
    date_hierarchy = "end_date"
    actions = ["activate", "extend_days", "cancel_now", "expire"]
    readonly_on_change = [
        "user", "plan", "status_admin", "start_date", "end_date", "cancel_at_period_end", "cancel_reason", "canceled_at",
        "next_plan", "external_id", "plan_match_rule", "last_reason", "last_transition_at", "created_at", "updated_at",
        "saved_card_admin", "checkouts_admin", "renewal_attempts_admin",
    ]

    @admin.display(description=_("plan"), ordering="plan__name")
    def plan_admin(self, obj):
        return obj.plan.name

    @admin.display(description=_("status"), ordering="status")
    def status_admin(self, obj):
        return status_badge(obj.status, obj.get_status_display())

    @admin.display(description=_("start date"), ordering="start_date")
    def start_admin(self, obj):
        return short_datetime(obj.start_date)

    @admin.display(description=_("end date"), ordering="end_date")
    def end_admin(self, obj):
        return short_datetime(obj.end_date)

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
            '{} · {} · {} · {} · {}{}',
            (
                (
                    short_id(c.public_id, url=reverse("admin:billing_checkout_change", args=[c.pk])),
                    short_datetime(c.created_at),
                    c.get_purpose_display(),
                    c.total_display,
                    status_badge(c.status, c.get_status_display()),
                    " · " + gettext("paid late") if c.is_late else "",
                )
                for c in rows
            ),
        )

    @admin.action(description=_("Activate (a new period from now)"), permissions=["change"])
    def activate(self, request, queryset):
        message = gettext("Activated by admin.")
        run_service(self, request, queryset, services.activate_subscription, message, actor=request.user, reason=message)

    @admin.action(description=_("Cancel now (access ends at once)"), permissions=["change"])
    def cancel_now(self, request, queryset):
        message = gettext("Canceled by admin.")
        run_service(self, request, queryset, services.cancel_subscription_now, message, actor=request.user, reason=message)

    @admin.action(description=_("Expire now"), permissions=["change"])
    def expire(self, request, queryset):
        message = gettext("Expired by admin.")
        run_service(self, request, queryset, services.expire_subscription, message, actor=request.user, reason=message)

    @admin.action(description=_("Extend by N days…"), permissions=["change"])
    def extend_days(self, request, queryset):
        form = ExtendDaysForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            days = form.cleaned_data["days"]
            message = gettext("Extended by %(days)d days.") % {"days": days}
            run_service(
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


