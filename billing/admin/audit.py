"""The money audit's page (its runs, what each found) and the money ledger, both read-only."""

from django.contrib import admin
from django.utils.html import format_html_join
from django.utils.translation import gettext_lazy as _

from billing.admin.access import FinanceOnlyMixin
from billing.ledger_models import LedgerEntry, MoneyAuditRun


class ReadOnlyMixin(FinanceOnlyMixin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(MoneyAuditRun)
class MoneyAuditRunAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["started_at", "violation_count", "counts", "duration_ms", "queries"]
    fields = ["started_at", "finished_at", "since", "duration_ms", "queries", "violation_count", "counts", "violations_admin"]
    readonly_fields = fields

    @admin.display(description=_("violations found"))
    def violations_admin(self, obj):
        if not obj.summary:
            return "—"
        return format_html_join(
            "", "<p>§9.{} <code>{}</code> {} {}</p>",
            ((v["invariant"], v["code"], v["message"], v["rows"]) for v in obj.summary),
        )


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["pk", "created_at", "kind", "cause", "amount_cents", "starts_at", "ends_at", "checkout_id", "subscription_id", "transaction_id"]
    list_filter = ["kind", "cause"]
    search_fields = ["transaction_id"]
    raw_id_fields = ["checkout", "subscription", "user", "coupon", "reconciliation_item", "actor", "gateway"]
    list_select_related = False
