"""
The integrations back office (contract §5): tracking pixels (secrets
write-only), outbound webhook endpoints (secret shown once), their events and
deliveries with every attempt, replayable.
"""

import json
import re

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from billing.admin.display import short_datetime, short_id, status_badge
from billing.personal_data import mask_personal_data
from integrations.models import EVENT_TYPES, Delivery, DeliveryAttempt, OutboxEvent, TrackingPixels, WebhookEndpoint
from integrations.outbox import failing_endpoints, replay_deliveries
from integrations.pixels import forget_pixel_ids

SECRET_FIELDS = {
    "meta_access_token": _("Meta Conversions API access token"),
    "ga4_api_secret": _("GA4 Measurement Protocol API secret"),
    "tiktok_access_token": _("TikTok Events API access token"),
}


PIXEL_ID = re.compile(r"^[A-Za-z0-9-]{1,40}$")


def _write_only(label):
    return forms.CharField(
        label=label,
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=_("Write-only. Leave blank to keep the current value."),
    )


class TrackingPixelsForm(forms.ModelForm):
    """Secrets are never rendered back; left blank, the stored ones are kept; ticked, removed."""

    new_meta_access_token = _write_only(SECRET_FIELDS["meta_access_token"])
    clear_meta_access_token = forms.BooleanField(label=_("remove the stored Meta token"), required=False)
    new_ga4_api_secret = _write_only(SECRET_FIELDS["ga4_api_secret"])
    clear_ga4_api_secret = forms.BooleanField(label=_("remove the stored GA4 secret"), required=False)
    new_tiktok_access_token = _write_only(SECRET_FIELDS["tiktok_access_token"])
    clear_tiktok_access_token = forms.BooleanField(label=_("remove the stored TikTok token"), required=False)

    class Meta:
        model = TrackingPixels
        fields = ["meta_pixel_id", "ga4_measurement_id", "tiktok_pixel_id"]

    def clean(self):
        # The ids go into every consented page and into the platforms' script URLs.
        cleaned = super().clean()
        for name in self.Meta.fields:
            value = cleaned.get(name) or ""
            if value and not PIXEL_ID.match(value):
                self.add_error(name, _("Only letters, digits and hyphens, as the platform shows the id."))
        return cleaned

    def save(self, commit=True):
        for name in SECRET_FIELDS:
            if self.cleaned_data.get(f"clear_{name}"):
                setattr(self.instance, name, "")
            elif self.cleaned_data.get(f"new_{name}"):
                setattr(self.instance, name, self.cleaned_data[f"new_{name}"])
        self.instance.pk = 1
        return super().save(commit=commit)


def _mask(secret: str) -> str:
    return "•" * 8 + secret[-4:] if secret and len(secret) > 12 else ("•" * 8 if secret else "—")


@admin.register(TrackingPixels)
class TrackingPixelsAdmin(admin.ModelAdmin):
    form = TrackingPixelsForm
    list_display = ["__str__", "meta_pixel_id", "ga4_measurement_id", "tiktok_pixel_id", "platforms_admin", "updated_at"]
    readonly_fields = ["meta_secret_admin", "ga4_secret_admin", "tiktok_secret_admin", "updated_at"]
    fieldsets = [
        ("Meta", {"fields": ["meta_pixel_id", "new_meta_access_token", "clear_meta_access_token", "meta_secret_admin"]}),
        ("Google Analytics 4", {"fields": ["ga4_measurement_id", "new_ga4_api_secret", "clear_ga4_api_secret", "ga4_secret_admin"]}),
        ("TikTok", {"fields": ["tiktok_pixel_id", "new_tiktok_access_token", "clear_tiktok_access_token", "tiktok_secret_admin"]}),
    ]

    def has_add_permission(self, request):
        return not TrackingPixels.objects.exists() and super().has_add_permission(request)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        transaction.on_commit(forget_pixel_ids)  # the pages read the new ids at once

    @admin.display(description=_("sends Purchase to"))
    def platforms_admin(self, obj):
        return ", ".join(obj.platforms()) or "—"

    @admin.display(description=_("stored Meta token"))
    def meta_secret_admin(self, obj):
        return _mask(obj.meta_access_token)

    @admin.display(description=_("stored GA4 secret"))
    def ga4_secret_admin(self, obj):
        return _mask(obj.ga4_api_secret)

    @admin.display(description=_("stored TikTok token"))
    def tiktok_secret_admin(self, obj):
        return _mask(obj.tiktok_access_token)


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(label=_("URL"), max_length=500, assume_scheme="https")
    events = forms.MultipleChoiceField(
        label=_("events"),
        choices=[(t, t) for t in EVENT_TYPES],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("None ticked: every event."),
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["url", "events", "is_active", "description"]


class FailingFilter(admin.SimpleListFilter):
    """The admin index's "outbound endpoints failing" figure, as a filter (integrations.outbox)."""

    title = _("failing")
    parameter_name = "failing"

    def lookups(self, request, model_admin):
        return [("yes", _("Failing for more than an hour"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(pk__in=failing_endpoints().values("pk"))
        return queryset


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = ["url", "is_active", "events_admin", "failing_since", "created_at"]
    list_filter = [FailingFilter, "is_active"]
    readonly_fields = ["failing_since", "created_at"]
    fields = ["url", "events", "is_active", "description", "failing_since", "created_at"]

    @admin.display(description=_("events"))
    def events_admin(self, obj):
        return ", ".join(obj.events) or gettext("all")

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not change:
            # The one time the secret is shown: the receiver needs it to verify signatures.
            self.message_user(
                request,
                gettext("Signing secret (shown once, copy it now): %(secret)s") % {"secret": obj.secret},
                messages.WARNING,
            )


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    can_delete = False
    fields = ["attempted_at", "status_code", "error", "response_excerpt", "duration_ms"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


def _replay(modeladmin, request, deliveries):
    count = replay_deliveries(deliveries=deliveries)
    modeladmin.message_user(
        request, ngettext("%(count)d delivery queued again.", "%(count)d deliveries queued again.", count) % {"count": count},
        messages.SUCCESS,
    )


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ["event_id_admin", "event_type", "endpoint", "status_admin", "attempts", "next_admin", "delivered_admin"]
    list_filter = ["status", "endpoint", "event__type"]
    search_fields = ["=event__id"]
    list_select_related = ["event", "endpoint"]
    inlines = [DeliveryAttemptInline]
    actions = ["replay"]
    fields = ["event", "endpoint", "status", "attempts", "next_attempt_at", "delivered_at", "created_at"]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description=_("type"), ordering="event__type")
    def event_type(self, obj):
        return obj.event.type

    @admin.display(description=_("event id"))
    def event_id_admin(self, obj):
        return short_id(obj.event_id)

    @admin.display(description=_("status"), ordering="status")
    def status_admin(self, obj):
        return status_badge(obj.status, obj.get_status_display())

    @admin.display(description=_("next attempt at"), ordering="next_attempt_at")
    def next_admin(self, obj):
        return short_datetime(obj.next_attempt_at)

    @admin.display(description=_("delivered at"), ordering="delivered_at")
    def delivered_admin(self, obj):
        return short_datetime(obj.delivered_at)

    @admin.action(description=_("Replay (send again now)"), permissions=["view"])
    def replay(self, request, queryset):
        _replay(self, request, queryset)


@admin.register(OutboxEvent)
class OutboxEventAdmin(admin.ModelAdmin):
    list_display = ["id_admin", "type", "created_at"]
    list_filter = ["type"]
    search_fields = ["=id"]
    fields = ["id", "type", "ordering_key", "created_at", "data_admin"]
    readonly_fields = fields
    actions = ["replay"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description=_("event id"), ordering="id")
    def id_admin(self, obj):
        return short_id(obj.id)

    @admin.display(description=_("data (personal data masked)"))
    def data_admin(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(mask_personal_data(obj.data), indent=2, ensure_ascii=False))

    @admin.action(description=_("Replay to every endpoint it was sent to"), permissions=["view"])
    def replay(self, request, queryset):
        _replay(self, request, Delivery.objects.filter(event__in=queryset))
