"""
Refund requests (withdrawals, CDC art. 49): what is owed, to whom, by when.
A gateway with a refund API closes them itself (its `refunded` postback);
for one without (JunglePay) staff refund at the provider and mark them done,
which refunds the checkout through billing.services.
"""

from django.contrib import admin
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from billing import services
from billing.admin.access import FinanceOnlyMixin
from billing.admin.actions import run_service
from billing.admin.display import short_datetime, status_badge
from billing.models import RefundRequest


@admin.register(RefundRequest)
class RefundRequestAdmin(FinanceOnlyMixin, admin.ModelAdmin):
    list_display = ["requested_admin", "customer", "amount_admin", "deadline_admin", "status_admin", "closed_admin"]
    list_filter = ["status", "closed_by", "checkout__gateway__kind"]
    search_fields = ["checkout__customer_email", "=checkout__gateway_transaction_id"]
    list_select_related = ["checkout", "checkout__gateway"]
    fields = ["checkout", "subscription", "amount_admin", "customer", "gateway", "transaction_id", "status", "requested_at", "deadline", "closed_at", "closed_by"]
    readonly_fields = fields
    actions = ["mark_refunded"]
    service_arg = "refund_request"

    def has_add_permission(self, request):
        return False

    @admin.display(description=_("requested at"), ordering="requested_at")
    def requested_admin(self, obj):
        return short_datetime(obj.requested_at)

    @admin.display(description=_("status"), ordering="status")
    def status_admin(self, obj):
        return status_badge(obj.status, obj.get_status_display())

    @admin.display(description=_("closed at"), ordering="closed_at")
    def closed_admin(self, obj):
        return short_datetime(obj.closed_at)

    @admin.display(description=_("amount"), ordering="amount_cents")
    def amount_admin(self, obj):
        return obj.amount_display

    @admin.display(description=_("customer"))
    def customer(self, obj):
        return f"{obj.checkout.customer_name} <{obj.checkout.customer_email}>"

    @admin.display(description=_("gateway"))
    def gateway(self, obj):
        return obj.checkout.gateway or "—"

    @admin.display(description=_("gateway transaction id"))
    def transaction_id(self, obj):
        return obj.checkout.gateway_transaction_id or "—"

    @admin.display(description=_("refund by"), ordering="deadline")
    def deadline_admin(self, obj):
        shown = timezone.localtime(obj.deadline).strftime("%d/%m/%Y %H:%M")
        if obj.status == RefundRequest.Status.PENDING and obj.deadline < timezone.now():
            return format_html('<strong style="color:var(--error-fg)">{} ({})</strong>', shown, gettext("overdue"))
        return shown

    @admin.action(description=_("Mark refunded (refunded at the provider by hand)"))
    def mark_refunded(self, request, queryset):
        run_service(
            self, request, queryset.filter(status=RefundRequest.Status.PENDING), services.complete_refund_request,
            gettext("Refunded by hand at the provider; the checkout is refunded."),
        )
