"""
Webhook events: payload, outcome and the replay action (billing.admin.payments),
personal data masked.
"""

import json

from django.contrib import admin
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from billing.admin.access import FinanceOnlyMixin
from billing.admin.display import masked_json, short_datetime, short_id, status_badge
from billing.admin.payments import replay_webhook_events
from billing.models import WebhookEvent
from billing.personal_data import mask_personal_text
from config.site_health import postbacks_needing_attention


class NeedsAttentionFilter(admin.SimpleListFilter):
    """The admin index's "postbacks failed or unprocessed" figure, as a filter (config.site_health)."""

    title = _("needs attention")
    parameter_name = "attention"

    def lookups(self, request, model_admin):
        return [("24h", _("Failed or unprocessed, last 24 h"))]

    def queryset(self, request, queryset):
        if self.value() == "24h":
            return queryset.filter(pk__in=postbacks_needing_attention(now=timezone.now()).values("pk"))
        return queryset


@admin.register(WebhookEvent)
class WebhookEventAdmin(FinanceOnlyMixin, admin.ModelAdmin):
    """Payment events carry customers' data and money: finance staff only, personal data masked."""

    list_display = ["received_admin", "provider", "event_admin", "outcome_admin", "attempts", "checkout_admin", "processed_admin"]
    list_filter = [NeedsAttentionFilter, "provider", "outcome", ("received_at", admin.DateFieldListFilter)]
    search_fields = ["=event_id", "checkout__customer_email"]
    list_select_related = ["checkout"]
    fields = ["provider", "event_id", "outcome", "error", "attempts", "received_at", "processed_at", "checkout", "headers_admin", "payload_admin", "body_admin"]
    readonly_fields = fields
    actions = [replay_webhook_events]

    def has_add_permission(self, request):
        return False

    @admin.display(description=_("received at"), ordering="received_at")
    def received_admin(self, obj):
        return short_datetime(obj.received_at)

    @admin.display(description=_("event id"), ordering="event_id")
    def event_admin(self, obj):
        return short_id(obj.event_id)

    @admin.display(description=_("outcome"), ordering="outcome")
    def outcome_admin(self, obj):
        return status_badge(obj.outcome, obj.get_outcome_display())

    @admin.display(description=_("checkout"))
    def checkout_admin(self, obj):
        if obj.checkout_id is None:
            return "—"
        return short_id(obj.checkout.public_id, url=reverse("admin:billing_checkout_change", args=[obj.checkout_id]))

    @admin.display(description=_("processed at"), ordering="processed_at")
    def processed_admin(self, obj):
        return short_datetime(obj.processed_at)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("headers"))
    def headers_admin(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.headers, indent=2, ensure_ascii=False))

    @admin.display(description=_("parsed payload"))
    def payload_admin(self, obj):
        return masked_json(obj.payload)  # masked when stored; masked again for rows stored before that

    @admin.display(description=_("raw body"))
    def body_admin(self, obj):
        try:
            parsed = json.loads(obj.body)
        except ValueError:
            return format_html("<pre>{}</pre>", mask_personal_text(obj.body))
        return masked_json(parsed)


