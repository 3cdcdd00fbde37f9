"""Data requests (LGPD art. 18) with their 15-day deadline; staff record those received by other channels."""

from django.contrib import admin
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from legal import services
from legal.models import ConsentRecord, DataRequest, LegalDocument


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


@admin.register(LegalDocument)
class LegalDocumentAdmin(admin.ModelAdmin):
    """Terms of use and privacy policy: a change is a new version; published ones are read-only."""

    list_display = ["kind", "version", "title_pt_br", "published_at"]
    list_filter = ["kind"]
    fields = ["kind", "version", "title_pt_br", "body_pt_br", "title_en", "body_en", "published_at"]
    actions = ["publish"]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.published_at is not None:
            return self.fields
        return ["version", "published_at"] + (["kind"] if obj is not None else [])

    def has_delete_permission(self, request, obj=None):
        return obj is None or obj.published_at is None

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)  # a draft's text
            return
        created = services.create_legal_document(
            kind=obj.kind, title_pt_br=obj.title_pt_br, body_pt_br=obj.body_pt_br, title_en=obj.title_en, body_en=obj.body_en
        )
        obj.pk, obj.version = created.pk, created.version

    @admin.action(description=_("Publish (in force from now on)"))
    def publish(self, request, queryset):
        done = 0
        for document in queryset.filter(published_at__isnull=True):
            changed = services.publish_legal_document(document=document)
            self.log_change(request, changed, gettext("Published."))
            done += 1
        self.message_user(request, ngettext("%(count)d page published.", "%(count)d pages published.", done) % {"count": done})


@admin.register(ConsentRecord)
class ConsentRecordAdmin(admin.ModelAdmin):
    list_display = ["decided_at", "visitor_id", "user", "analytics", "marketing", "privacy_version"]
    list_filter = ["analytics", "marketing"]
    readonly_fields = ["decided_at", "visitor_id", "user", "analytics", "marketing", "privacy_version"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
