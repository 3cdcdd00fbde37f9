"""
The payments part of the back office: the replay action of webhook events
and the reconciliation list with its "reconcile now" button. Doors only: each
calls `billing.webhooks` / `billing.reconciliation` and reports counts.

`billing/admin/webhooks.py` gives its WebhookEventAdmin the replay action.
"""

import json

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from billing.admin.access import ReadOnlyMixin, has_finance_permission
from billing.admin.display import short_datetime, short_id
from billing.gateways import GatewayError
from billing.models import ReconciliationItem, UnclaimedMarketplacePayment, WebhookEvent
from billing.money import format_brl
from billing.reconciliation import reconcile_payments
from billing.webhooks import process_event


@admin.action(description=_("Replay selected webhook events"))
def replay_webhook_events(modeladmin, request, queryset):
    if not has_finance_permission(request.user):
        raise PermissionDenied
    outcomes = {}
    for event in queryset.order_by("received_at"):
        outcome = process_event(event=event)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    failed = outcomes.get(WebhookEvent.Outcome.FAILED, 0)
    summary = ", ".join(f"{WebhookEvent.Outcome(key).label}: {count}" for key, count in sorted(outcomes.items()))
    modeladmin.message_user(
        request,
        ngettext("Replayed %(count)d event (%(summary)s).", "Replayed %(count)d events (%(summary)s).", sum(outcomes.values()))
        % {"count": sum(outcomes.values()), "summary": summary},
        level=messages.WARNING if failed else messages.SUCCESS,
    )


@admin.register(UnclaimedMarketplacePayment)
class UnclaimedMarketplacePaymentAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Marketplace money waiting for its e-mail's owner to confirm (contract §3); read-only, claimed by the owner."""

    list_display = ["received_admin", "external_id", "email", "amount_admin", "paid_admin", "claimed_admin"]
    list_filter = [("claimed_at", admin.EmptyFieldListFilter)]
    search_fields = ["=external_id", "email"]
    list_select_related = ["subscription"]

    @admin.display(description=_("received at"), ordering="received_at")
    def received_admin(self, obj):
        return short_datetime(obj.received_at)

    @admin.display(description=_("amount"), ordering="paid_amount_cents")
    def amount_admin(self, obj):
        return format_brl(obj.paid_amount_cents)

    @admin.display(description=_("paid at"), ordering="paid_at")
    def paid_admin(self, obj):
        return short_datetime(obj.paid_at)

    @admin.display(description=_("claimed at"), ordering="claimed_at")
    def claimed_admin(self, obj):
        return short_datetime(obj.claimed_at)


@admin.register(ReconciliationItem)
class ReconciliationItemAdmin(admin.ModelAdmin):
    list_display = ["found_admin", "kind", "amount_admin", "transaction_admin", "checkout_admin", "resolved"]
    list_filter = ["kind", "resolved", "gateway"]
    search_fields = ["=transaction_id", "checkout__customer_email"]
    list_select_related = ["gateway", "checkout"]
    fields = ["found_at", "gateway", "kind", "amount_admin", "transaction_id", "checkout", "detail_admin", "resolved"]
    readonly_fields = ["found_at", "gateway", "kind", "amount_admin", "transaction_id", "checkout", "detail_admin"]
    actions = ["mark_resolved"]

    # Money differences: the finance permission as well as the model permission.
    def has_view_permission(self, request, obj=None):
        return has_finance_permission(request.user) and super().has_view_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return has_finance_permission(request.user) and super().has_change_permission(request, obj)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("found at"), ordering="found_at")
    def found_admin(self, obj):
        return short_datetime(obj.found_at)

    @admin.display(description=_("amount"), ordering="amount_cents")
    def amount_admin(self, obj):
        return format_brl(obj.amount_cents) if obj.amount_cents is not None else "—"

    @admin.display(description=_("transaction id"), ordering="transaction_id")
    def transaction_admin(self, obj):
        return short_id(obj.transaction_id)

    @admin.display(description=_("checkout"))
    def checkout_admin(self, obj):
        if obj.checkout_id is None:
            return "—"
        return short_id(obj.checkout.public_id, url=reverse("admin:billing_checkout_change", args=[obj.checkout_id]))

    @admin.display(description=_("detail"))
    def detail_admin(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.detail, indent=2, ensure_ascii=False))

    @admin.action(description=_("Mark selected items as resolved"))
    def mark_resolved(self, request, queryset):
        count = queryset.filter(resolved=False).update(resolved=True)
        self.message_user(request, ngettext("%(count)d item resolved.", "%(count)d items resolved.", count) % {"count": count})

    def get_urls(self):
        info = self.model._meta.app_label, self.model._meta.model_name
        return [
            path("reconcile-now/", self.admin_site.admin_view(self.reconcile_now_view), name="%s_%s_reconcile_now" % info),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "can_reconcile": has_finance_permission(request.user)}
        return super().changelist_view(request, extra_context=extra_context)

    def reconcile_now_view(self, request):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not has_finance_permission(request.user):
            raise PermissionDenied
        try:
            reports = reconcile_payments()
        except GatewayError as exc:
            self.message_user(request, gettext("Reconciliation failed: %(error)s") % {"error": exc.message}, level=messages.ERROR)
        else:
            if not reports:
                self.message_user(request, gettext("No gateway to reconcile."), level=messages.INFO)
            for report in reports:
                self.message_user(
                    request,
                    gettext(
                        "%(gateway)s: %(listed)d charges listed, %(matched)d agree, %(fixed)d missed payments fixed, "
                        "%(flagged)d differences listed."
                    )
                    % {"gateway": report.gateway, "listed": report.listed, "matched": report.matched, "fixed": report.fixed, "flagged": report.flagged},
                    level=messages.WARNING if report.flagged or report.errors else messages.SUCCESS,
                )
        return HttpResponseRedirect(reverse("admin:billing_reconciliationitem_changelist"))
