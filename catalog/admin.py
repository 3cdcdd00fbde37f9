"""
Back office for the catalog: creators (previews, featured ordering,
publish/hide), posts with their media inline, and the "publish to catalog"
action on the white-label creators. Actions call services and report counts.
"""

from django.contrib import admin, messages
from django.db import models, transaction
from django.db.models import Count
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from catalog.models import Creator, Media, Post
from catalog.page_cache import bump_catalog_version
from catalog.selectors import media_urls
from catalog.services import previews, publishing
from catalog.services.previews import generate_previews_task
from config.tasks import enqueue


def _thumb(url: str, size: int = 48):
    if not url:
        return "—"
    return format_html(
        '<img src="{}" alt="" style="height:{}px;width:auto;max-width:{}px;border-radius:4px;object-fit:cover">',
        url,
        size,
        size * 3,
    )


class MediaInline(admin.TabularInline):
    model = Media
    extra = 1
    fields = ("position", "type", "file", "key", "media_preview")
    readonly_fields = ("key", "media_preview")
    ordering = ("position", "id")

    @admin.display(description=_("preview"))
    def media_preview(self, obj):
        # Admins are staff: show the real (signed) media to check what was published.
        if not obj.pk or obj.type != Media.Type.IMAGE:
            return "—"
        return _thumb(media_urls([obj]).get(obj.pk, ""), 64)


@admin.register(Creator)
class CreatorAdmin(admin.ModelAdmin):
    list_display = (
        "icon_preview",
        "name",
        "slug",
        "status",
        "is_featured",
        "featured_order",
        "post_count",
        "source",
    )
    list_display_links = ("icon_preview", "name")
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_editable = ("is_featured", "featured_order")
    list_filter = ("status", "is_featured")
    search_fields = ("name", "slug", "source_folder")
    prepopulated_fields = {"slug": ("name",)}
    readonly_fields = (
        "post_count",
        "source",
        "source_folder",
        "images_preview",
        "source_icon_url",
        "source_banner_url",
        "source_thumbnail_url",
        "created_at",
        "updated_at",
    )
    ordering = ("-is_featured", "featured_order", "-post_count", "name")
    actions = ("publish_creators", "hide_creators")
    fieldsets = (
        (None, {"fields": ("name", "slug", "description", "status")}),
        (_("Featured"), {"fields": ("is_featured", "featured_order")}),
        (
            _("Images"),
            {
                "fields": (
                    "images_preview",
                    "icon",
                    "banner",
                    "thumbnail",
                    "source_icon_url",
                    "source_banner_url",
                    "source_thumbnail_url",
                )
            },
        ),
        (_("White-label source"), {"fields": ("source", "source_folder", "post_count", "created_at", "updated_at")}),
    )

    # Name, slug, images or status changed: the cached pages are stale once this commits.
    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        bump_catalog_version()

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        bump_catalog_version()

    def delete_queryset(self, request, queryset):
        super().delete_queryset(request, queryset)
        bump_catalog_version()

    @admin.display(description=_("icon"))
    def icon_preview(self, obj):
        return _thumb(obj.icon_url or obj.thumbnail_url)

    @admin.display(description=_("current images"))
    def images_preview(self, obj):
        return format_html(
            "{} {} {}", _thumb(obj.icon_url, 64), _thumb(obj.thumbnail_url, 64), _thumb(obj.banner_url, 64)
        )

    @admin.action(description=_("Publish selected creators"), permissions=["change"])
    def publish_creators(self, request, queryset):
        changed = publishing.set_creators_status(
            creator_ids=list(queryset.values_list("pk", flat=True)), status=Creator.Status.PUBLISHED
        )
        self.message_user(
            request, ngettext("%d creator published.", "%d creators published.", changed) % changed, messages.SUCCESS
        )

    @admin.action(description=_("Hide selected creators"), permissions=["change"])
    def hide_creators(self, request, queryset):
        changed = publishing.set_creators_status(
            creator_ids=list(queryset.values_list("pk", flat=True)), status=Creator.Status.HIDDEN
        )
        self.message_user(
            request, ngettext("%d creator hidden.", "%d creators hidden.", changed) % changed, messages.SUCCESS
        )


@admin.register(Post)
class PostAdmin(admin.ModelAdmin):
    list_display = ("preview_thumb", "title", "creator", "status", "published_at", "media_count")
    list_display_links = ("preview_thumb", "title")
    list_filter = ("status", "removed_from_source", "creator__is_featured")
    list_select_related = ("creator",)
    search_fields = ("title", "creator__name", "source_folder")
    autocomplete_fields = ("creator",)
    date_hierarchy = "published_at"
    readonly_fields = ("preview_thumb", "source", "source_folder", "removed_from_source", "created_at", "updated_at")
    fields = (
        "creator",
        "title",
        "published_at",
        "status",
        "preview",
        "preview_thumb",
        "source",
        "source_folder",
        "removed_from_source",
    )
    inlines = (MediaInline,)
    actions = ("publish_posts", "hide_posts", "regenerate_previews")

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(media_total=Count("media"))

    @admin.display(description=_("media"), ordering="media_total")
    def media_count(self, obj):
        return obj.media_total

    @admin.display(description=_("public preview"))
    def preview_thumb(self, obj):
        return _thumb(obj.preview.url if obj.preview else "")

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        post = form.instance
        creator_ids = [post.creator_id]
        if change and "creator" in form.changed_data and form.initial.get("creator"):
            creator_ids.append(form.initial["creator"])
        publishing.refresh_post_counts(creator_ids=creator_ids)
        if not post.preview:
            transaction.on_commit(lambda: _enqueue_preview(post.pk))

    def delete_model(self, request, obj):
        creator_id = obj.creator_id
        super().delete_model(request, obj)
        publishing.refresh_post_counts(creator_ids=[creator_id])

    def delete_queryset(self, request, queryset):
        creator_ids = list(queryset.values_list("creator_id", flat=True).distinct())
        super().delete_queryset(request, queryset)
        publishing.refresh_post_counts(creator_ids=creator_ids)

    @admin.action(description=_("Publish selected posts"), permissions=["change"])
    def publish_posts(self, request, queryset):
        changed = publishing.set_posts_status(
            post_ids=list(queryset.values_list("pk", flat=True)), status=Post.Status.PUBLISHED
        )
        self.message_user(request, ngettext("%d post published.", "%d posts published.", changed) % changed)

    @admin.action(description=_("Hide selected posts"), permissions=["change"])
    def hide_posts(self, request, queryset):
        changed = publishing.set_posts_status(
            post_ids=list(queryset.values_list("pk", flat=True)), status=Post.Status.HIDDEN
        )
        self.message_user(request, ngettext("%d post hidden.", "%d posts hidden.", changed) % changed)

    @admin.action(description=_("Generate missing previews"), permissions=["change"])
    def regenerate_previews(self, request, queryset):
        made = previews.generate_previews(post_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, ngettext("%d preview generated.", "%d previews generated.", made) % made)


def _enqueue_preview(post_id: int) -> None:
    enqueue(generate_previews_task, post_ids=[post_id])
