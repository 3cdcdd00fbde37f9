"""
Webhook events: payload, outcome and the replay action (billing.admin.payments),
personal data masked.
"""

import json

from django.contrib import admin
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from billing.admin.access import FinanceOnlyMixin
from billing.admin.display import masked_json
from billing.admin.payments import replay_webhook_events
from billing.models import WebhookEvent
from billing.personal_data import mask_personal_text


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
        return masked_json(obj.payload)  # masked when stored; masked again for rows stored before that

    @admin.display(description=_("raw body"))
    def body_admin(self, obj):
        try:
            parsed = json.loads(obj.body)
        except ValueError:
            return format_html("<pre>{}</pre>", mask_personal_text(obj.body))
        return masked_json(parsed)


