"""
Staging tables mirroring the white-label bucket (contract §7).

The sync (`whitelabel.sync`) is the only writer of the S3-derived columns;
admins only change `WhitelabelCreator.status`. The catalog app publishes from
these tables into its own; nothing here is shown to site visitors directly.
"""

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

# S3 keys are at most 1024 bytes of UTF-8; a folder name is one path segment of one.
KEY_MAX_LENGTH = 1024
URL_MAX_LENGTH = 4096  # percent-encoding can triple a key's length


class WhitelabelCreator(models.Model):
    class Status(models.TextChoices):
        NEW = "new", _("New")
        ACTIVE = "active", _("Active")
        HIDDEN = "hidden", _("Hidden")

    folder_name = models.CharField(
        _("folder name"), max_length=KEY_MAX_LENGTH, unique=True, help_text=_("Top-level folder in the bucket.")
    )
    slug = models.SlugField(_("slug"), max_length=255, unique=True, allow_unicode=False)
    thumbnail_key = models.CharField(_("thumbnail key"), max_length=KEY_MAX_LENGTH, blank=True)
    thumbnail_url = models.URLField(_("thumbnail URL"), max_length=URL_MAX_LENGTH, blank=True)
    icon_key = models.CharField(_("icon key"), max_length=KEY_MAX_LENGTH, blank=True)
    icon_url = models.URLField(_("icon URL"), max_length=URL_MAX_LENGTH, blank=True)
    banner_key = models.CharField(_("banner key"), max_length=KEY_MAX_LENGTH, blank=True)
    banner_url = models.URLField(_("banner URL"), max_length=URL_MAX_LENGTH, blank=True)
    post_count = models.PositiveIntegerField(_("post count"), default=0)
    status = models.CharField(
        _("status"),
        max_length=10,
        choices=Status.choices,
        default=Status.NEW,
        db_index=True,
        help_text=_("New: found by the sync, not published. Active: published. Hidden: kept out of the catalog."),
    )
    last_synced_at = models.DateTimeField(_("last synced at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("white-label creator")
        verbose_name_plural = _("white-label creators")
        ordering = ["folder_name"]

    def __str__(self):
        return self.folder_name


class WhitelabelPost(models.Model):
    creator = models.ForeignKey(
        WhitelabelCreator, on_delete=models.CASCADE, related_name="posts", verbose_name=_("creator")
    )
    folder_name = models.CharField(_("folder name"), max_length=KEY_MAX_LENGTH)
    title = models.CharField(_("title"), max_length=KEY_MAX_LENGTH, help_text=_("Derived from the folder name."))
    media_summary = models.JSONField(
        _("media summary"),
        default=dict,
        blank=True,
        help_text=_('Media URLs in display order: {"images": [...], "videos": [...]}.'),
    )
    media_count = models.PositiveIntegerField(_("media count"), default=0)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("white-label post")
        verbose_name_plural = _("white-label posts")
        ordering = ["creator", "folder_name"]
        constraints = [
            models.UniqueConstraint(fields=["creator", "folder_name"], name="whitelabel_post_unique_folder"),
        ]

    def __str__(self):
        return f"{self.creator_id}/{self.folder_name}"


class WhitelabelMedia(models.Model):
    class Type(models.TextChoices):
        IMAGE = "image", _("Image")
        VIDEO = "video", _("Video")

    post = models.ForeignKey(WhitelabelPost, on_delete=models.CASCADE, related_name="media", verbose_name=_("post"))
    s3_key = models.CharField(_("S3 key"), max_length=KEY_MAX_LENGTH, unique=True)
    url = models.URLField(_("URL"), max_length=URL_MAX_LENGTH)
    type = models.CharField(_("type"), max_length=10, choices=Type.choices)
    size = models.BigIntegerField(_("size (bytes)"), default=0)
    etag = models.CharField(_("ETag"), max_length=100, blank=True)
    last_modified = models.DateTimeField(_("last modified"), null=True, blank=True)
    sort_key = models.CharField(
        _("sort key"),
        max_length=KEY_MAX_LENGTH,
        blank=True,
        help_text=_("Natural-order key of the path below the post folder (2.jpg before 10.jpg)."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("white-label media")
        verbose_name_plural = _("white-label media")
        # Read per post (a few dozen rows, sorted in memory after the post_id index):
        # no (post, sort_key) index, one index less to maintain on every bulk load.
        ordering = ["post", "sort_key", "s3_key"]

    def __str__(self):
        return self.s3_key


class SyncRun(models.Model):
    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")

    class Trigger(models.TextChoices):
        COMMAND = "command", _("Command")
        TASK = "task", _("Scheduled task")
        ADMIN = "admin", _("Admin")

    started_at = models.DateTimeField(_("started at"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    prefix = models.CharField(
        _("prefix"), max_length=KEY_MAX_LENGTH, blank=True, help_text=_("Creator folder synced; empty means all.")
    )
    trigger = models.CharField(_("trigger"), max_length=10, choices=Trigger.choices, default=Trigger.COMMAND)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.RUNNING)
    pages = models.PositiveIntegerField(_("pages listed"), default=0)
    keys_listed = models.PositiveIntegerField(_("keys listed"), default=0)
    keys_skipped = models.PositiveIntegerField(_("keys skipped"), default=0)
    skipped_by_reason = models.JSONField(_("skipped by reason"), default=dict, blank=True)
    creators_created = models.PositiveIntegerField(_("creators created"), default=0)
    creators_updated = models.PositiveIntegerField(_("creators updated"), default=0)
    creators_deleted = models.PositiveIntegerField(_("creators deleted"), default=0)
    posts_created = models.PositiveIntegerField(_("posts created"), default=0)
    posts_updated = models.PositiveIntegerField(_("posts updated"), default=0)
    posts_deleted = models.PositiveIntegerField(_("posts deleted"), default=0)
    media_created = models.PositiveIntegerField(_("media created"), default=0)
    media_updated = models.PositiveIntegerField(_("media updated"), default=0)
    media_deleted = models.PositiveIntegerField(_("media deleted"), default=0)
    rows_written = models.PositiveIntegerField(_("rows written"), default=0)
    error = models.TextField(_("error"), blank=True)

    class Meta:
        verbose_name = _("sync run")
        verbose_name_plural = _("sync runs")
        ordering = ["-started_at", "-pk"]
        constraints = [
            # The lock row: at most one run may be `running`. On PostgreSQL an
            # advisory lock is taken first, so this only ever trips elsewhere.
            models.UniqueConstraint(
                fields=["status"], condition=Q(status="running"), name="whitelabel_one_running_sync"
            ),
        ]

    def __str__(self):
        return f"{self.started_at:%Y-%m-%d %H:%M} {self.get_status_display()}"

    @property
    def duration_seconds(self) -> float | None:
        if not self.finished_at:
            return None
        return (self.finished_at - self.started_at).total_seconds()
