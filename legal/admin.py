"""Data requests (LGPD art. 18) with their 15-day deadline; staff record those received by other channels."""

from django.contrib import admin
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from legal import services
from legal.models import DataRequest


@admin.register(DataRequest)
class DataRequestAdmin(admin.ModelAdmin):
    list_display = ["received_at", "kind", "channel", "user", "deadline_admin", "completed_at"]
    list_filter = ["kind", "channel", ("completed_at", admin.EmptyFieldListFilter)]
    search_fields = ["user__email", "note"]
    list_select_related = ["user"]
    fields = ["kind", "user", "note", "received_at", "channel", "deadline", "completed_at"]
    raw_id_fields = ["user"]
    actions = ["mark_completed"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ["channel", "deadline", "completed_at"]
        return self.fields

    def has_delete_permission(self, request, obj=None):
        return False  # the record of having answered is kept

    def save_model(self, request, obj, form, change):
        if change:
            return
        created = services.record_data_request(
            kind=obj.kind, user=obj.user, note=obj.note, received_at=obj.received_at or timezone.now()
        )
        obj.pk = created.pk
        obj.deadline = created.deadline

    @admin.display(description=_("answer by"), ordering="deadline")
    def deadline_admin(self, obj):
        shown = timezone.localtime(obj.deadline).strftime("%d/%m/%Y %H:%M")
        if obj.is_open and obj.deadline < timezone.now():
            return format_html('<strong style="color:var(--error-fg)">{} ({})</strong>', shown, gettext("overdue"))
        return shown

    @admin.action(description=_("Mark answered"))
    def mark_completed(self, request, queryset):
        done = 0
        for data_request in queryset.filter(completed_at__isnull=True):
            changed = services.complete_data_request(data_request=data_request)
            self.log_change(request, changed, gettext("Answered."))
            done += 1
        self.message_user(request, ngettext("%(count)d request answered.", "%(count)d requests answered.", done) % {"count": done})
