"""
Back office for the staging tables (contract §5). Sync-owned columns are read-only here;
admins choose a creator's status and trigger syncs. Actions call `whitelabel.services`.

Publishing hook: if the module `catalog.whitelabel_actions` exists, every admin action
function in its `CREATOR_ACTIONS` list (e.g. "Publish to catalog") is offered on the
white-label creators list next to ours. The whitelabel app never imports catalog otherwise.
"""

from __future__ import annotations

import importlib
import importlib.util

from django.contrib import admin, messages
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from whitelabel import s3, services
from whitelabel.models import SyncRun, WhitelabelCreator, WhitelabelMedia, WhitelabelPost
from whitelabel.sync import disabled_message

CATALOG_ACTIONS_MODULE = "catalog.whitelabel_actions"


def catalog_creator_actions() -> list:
    """Admin actions the catalog app offers on white-label creators (its publish action), if any."""
    if importlib.util.find_spec(CATALOG_ACTIONS_MODULE.split(".")[0]) is None:
        return []
    if importlib.util.find_spec(CATALOG_ACTIONS_MODULE) is None:
        return []
    return list(getattr(importlib.import_module(CATALOG_ACTIONS_MODULE), "CREATOR_ACTIONS", []))


def _report(modeladmin, request, outcome: services.SyncRequest) -> None:
    modeladmin.message_user(request, outcome.message, messages.SUCCESS if outcome.ok else messages.WARNING)


class SyncNowMixin:
    """A "Sync now" button on the changelist (POST to `<changelist>/sync-now/`)."""

    change_list_template = "whitelabel/admin/change_list_sync.html"

    def get_urls(self):
        info = self.model._meta.app_label, self.model._meta.model_name
        return [
            path("sync-now/", self.admin_site.admin_view(self.sync_now_view), name="%s_%s_sync_now" % info),
        ] + super().get_urls()

    def sync_now_view(self, request):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not request.user.has_perm("whitelabel.change_whitelabelcreator"):
            self.message_user(request, _("You may not start a sync."), messages.ERROR)
        else:
            _report(self, request, services.request_sync(prefixes=None))
        info = self.model._meta.app_label, self.model._meta.model_name
        return HttpResponseRedirect(reverse("admin:%s_%s_changelist" % info))

    def changelist_view(self, request, extra_context=None):
        info = self.model._meta.app_label, self.model._meta.model_name
        extra_context = {
            **(extra_context or {}),
            "sync_now_url": reverse("admin:%s_%s_sync_now" % info),
            "sync_disabled_message": None if s3.sync_enabled() else disabled_message(),
        }
        return super().changelist_view(request, extra_context=extra_context)


@admin.register(WhitelabelCreator)
class WhitelabelCreatorAdmin(SyncNowMixin, admin.ModelAdmin):
    list_display = ["preview", "folder_name", "slug", "status", "post_count", "last_synced_at"]
    list_display_links = ["preview", "folder_name"]
    list_filter = ["status"]
    search_fields = ["folder_name", "slug"]
    ordering = ["-post_count", "folder_name"]
    readonly_fields = [
        "preview",
        "folder_name",
        "slug",
        "thumbnail_key",
        "thumbnail_url",
        "icon_key",
        "icon_url",
        "banner_key",
        "banner_url",
        "post_count",
        "last_synced_at",
        "created_at",
        "updated_at",
    ]
    fields = ["preview", "folder_name", "slug", "status", *readonly_fields[3:]]
    actions = ["sync_now", "sync_selected", "hide", "unhide"]

    def has_add_permission(self, request):
        return False  # creators come from the bucket

    @admin.display(description=_("thumbnail"))
    def preview(self, obj):
        url = obj.thumbnail_url or obj.icon_url
        if not url:
            return "—"
        return format_html(
            '<img src="{}" alt="" style="height:48px;width:48px;object-fit:cover;border-radius:4px">', url
        )

    def get_actions(self, request):
        actions = super().get_actions(request)
        for func in catalog_creator_actions():
            action = self.get_action(func)
            if action is not None:
                actions[action[1]] = action
        return actions

    @admin.action(description=_("Sync now (whole bucket)"), permissions=["change"])
    def sync_now(self, request, queryset):
        _report(self, request, services.request_sync(prefixes=None))

    @admin.action(description=_("Sync the selected creators"), permissions=["change"])
    def sync_selected(self, request, queryset):
        _report(self, request, services.request_sync(prefixes=list(queryset.values_list("folder_name", flat=True))))

    @admin.action(description=_("Hide the selected creators"), permissions=["change"])
    def hide(self, request, queryset):
        n = services.hide_creators(creator_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, _("%(n)d creator(s) hidden.") % {"n": n}, messages.SUCCESS)

    @admin.action(description=_("Unhide the selected creators"), permissions=["change"])
    def unhide(self, request, queryset):
        n = services.unhide_creators(creator_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, _("%(n)d creator(s) no longer hidden.") % {"n": n}, messages.SUCCESS)


class WhitelabelMediaInline(admin.TabularInline):
    model = WhitelabelMedia
    fields = ["s3_key", "type", "size", "etag", "last_modified", "link"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False
    ordering = ["sort_key", "s3_key"]

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description=_("URL"))
    def link(self, obj):
        return format_html('<a href="{}" target="_blank" rel="noopener">{}</a>', obj.url, _("open"))


@admin.register(WhitelabelPost)
class WhitelabelPostAdmin(admin.ModelAdmin):
    list_display = ["title", "creator", "media_count", "updated_at"]
    list_filter = ["creator__status"]
    search_fields = ["folder_name", "title", "creator__folder_name"]
    list_select_related = ["creator"]
    readonly_fields = ["creator", "folder_name", "title", "media_count", "media_summary", "created_at", "updated_at"]
    inlines = [WhitelabelMediaInline]

    def has_add_permission(self, request):
        return False


@admin.register(WhitelabelMedia)
class WhitelabelMediaAdmin(admin.ModelAdmin):
    list_display = ["s3_key", "type", "size", "last_modified"]
    list_filter = ["type"]
    search_fields = ["s3_key"]
    readonly_fields = [
        "post",
        "s3_key",
        "url",
        "type",
        "size",
        "etag",
        "last_modified",
        "sort_key",
        "created_at",
        "updated_at",
    ]
    list_select_related = ["post"]

    def has_add_permission(self, request):
        return False


@admin.register(SyncRun)
class SyncRunAdmin(SyncNowMixin, admin.ModelAdmin):
    list_display = [
        "started_at",
        "status",
        "trigger",
        "prefix",
        "keys_listed",
        "keys_skipped",
        "rows_written",
        "duration",
        "short_error",
    ]
    list_filter = ["status", "trigger"]
    search_fields = ["prefix", "error"]
    date_hierarchy = "started_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # history: read-only

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("duration (s)"))
    def duration(self, obj):
        seconds = obj.duration_seconds
        return "—" if seconds is None else f"{seconds:.1f}"

    @admin.display(description=_("error"))
    def short_error(self, obj):
        return (obj.error[:80] + "…") if len(obj.error) > 80 else obj.error
