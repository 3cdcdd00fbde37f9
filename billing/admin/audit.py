"""The money audit's page (its runs, what each found) and the money ledger, both read-only."""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html_join
from django.utils.translation import gettext_lazy as _

from billing.admin.access import ReadOnlyMixin
from billing.admin.display import short_datetime, short_id
from billing.ledger_models import LedgerEntry, MoneyAuditRun
from billing.money import format_brl


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
    list_display = ["pk", "created_admin", "kind", "cause", "amount_admin", "checkout_admin", "subscription_id"]
    list_filter = ["kind", "cause"]
    search_fields = ["transaction_id"]
    raw_id_fields = ["checkout", "subscription", "user", "coupon", "reconciliation_item", "actor", "gateway"]
    list_select_related = ["checkout"]

    @admin.display(description=_("created at"), ordering="created_at")
    def created_admin(self, obj):
        return short_datetime(obj.created_at)

    @admin.display(description=_("amount"), ordering="amount_cents")
    def amount_admin(self, obj):
        return format_brl(obj.amount_cents)

    @admin.display(description=_("checkout"))
    def checkout_admin(self, obj):
        if obj.checkout_id is None:
            return "—"
        return short_id(obj.checkout.public_id, url=reverse("admin:billing_checkout_change", args=[obj.checkout_id]))
