"""
The published catalog: what visitors browse and subscribers watch.

Rows come from two doors: `catalog.services.publishing` copies white-label
staging rows (their files stay in the white-label bucket, referenced by key),
and admins create creators and posts by hand (files uploaded through
django-storages). Every model therefore knows both shapes:

- Public images (creator icon/banner/thumbnail, post preview) are either an
  uploaded file in the *public* storage or, for white-label creators, the
  bucket's public (CDN) URL copied from staging.
- Paid media (`Media`) are either an uploaded file in the *private* storage
  or a key in `WHITELABEL_BUCKET`. Their URLs are only ever handed out
  presigned (or, on local file storage, behind a view that checks access).
"""

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from catalog.storage import private_storage, public_storage

# White-label keys are at most 1024 bytes (S3); URLs percent-encode them.
KEY_MAX_LENGTH = 1024
URL_MAX_LENGTH = 4096


class Creator(models.Model):
    class Status(models.TextChoices):
        PUBLISHED = "published", _("Published")
        HIDDEN = "hidden", _("Hidden")

    name = models.CharField(_("name"), max_length=255)
    slug = models.SlugField(_("slug"), max_length=255, unique=True)
    description = models.TextField(_("description"), blank=True)
    icon = models.ImageField(_("icon"), upload_to="creators/icons/", storage=public_storage, blank=True)
    banner = models.ImageField(_("banner"), upload_to="creators/banners/", storage=public_storage, blank=True)
    thumbnail = models.ImageField(
        _("thumbnail"), upload_to="creators/thumbnails/", storage=public_storage, blank=True
    )
    source_icon_url = models.URLField(
        _("white-label icon URL"),
        max_length=URL_MAX_LENGTH,
        blank=True,
        help_text=_("Public URL copied from the white-label bucket; an uploaded icon takes precedence."),
    )
    source_banner_url = models.URLField(_("white-label banner URL"), max_length=URL_MAX_LENGTH, blank=True)
    source_thumbnail_url = models.URLField(_("white-label thumbnail URL"), max_length=URL_MAX_LENGTH, blank=True)
    is_featured = models.BooleanField(_("featured"), default=False, help_text=_("Shown on the home page."))
    featured_order = models.PositiveIntegerField(
        _("featured order"), default=0, help_text=_("Lower numbers come first among featured creators.")
    )
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.PUBLISHED, db_index=True
    )
    # Published posts, kept up to date by the services that publish or hide
    # posts: the listing sorts by it on every request.
    post_count = models.PositiveIntegerField(_("post count"), default=0, editable=False)
    source = models.OneToOneField(
        "whitelabel.WhitelabelCreator",
        verbose_name=_("white-label creator"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="catalog_creator",
    )
    # The stable identity of a white-label creator (its folder), the upsert's
    # conflict target: staging rows can be deleted and recreated with new ids.
    source_folder = models.CharField(  # NULL for hand-made creators keeps it unique
        _("white-label folder"), max_length=KEY_MAX_LENGTH, null=True, blank=True, unique=True, editable=False
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("creator")
        verbose_name_plural = _("creators")
        ordering = ["-post_count", "name", "id"]
        indexes = [
            models.Index(fields=["status", "-post_count", "name", "id"], name="catalog_creator_listing"),
            models.Index(fields=["is_featured", "featured_order"], name="catalog_creator_featured"),
        ]

    def __str__(self):
        return self.name

    @property
    def icon_url(self) -> str:
        return self.icon.url if self.icon else self.source_icon_url

    @property
    def banner_url(self) -> str:
        return self.banner.url if self.banner else self.source_banner_url

    @property
    def thumbnail_url(self) -> str:
        return self.thumbnail.url if self.thumbnail else self.source_thumbnail_url


class Post(models.Model):
    class Status(models.TextChoices):
        PUBLISHED = "published", _("Published")
        HIDDEN = "hidden", _("Hidden")

    creator = models.ForeignKey(Creator, verbose_name=_("creator"), on_delete=models.CASCADE, related_name="posts")
    title = models.CharField(_("title"), max_length=KEY_MAX_LENGTH)
    published_at = models.DateTimeField(_("published at"), default=timezone.now)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PUBLISHED)
    preview = models.ImageField(
        _("preview"),
        upload_to="previews/",
        storage=public_storage,
        blank=True,
        help_text=_(
            "Public teaser shown to visitors without a subscription. Leave empty to have a blurred, "
            "low-resolution one generated from the first image."
        ),
    )
    removed_from_source = models.BooleanField(
        _("removed from the bucket"),
        default=False,
        editable=False,
        help_text=_("Hidden by publishing because its folder left the white-label bucket."),
    )
    source = models.OneToOneField(
        "whitelabel.WhitelabelPost",
        verbose_name=_("white-label post"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="catalog_post",
    )
    source_folder = models.CharField(  # noqa: DJ001 - NULL for hand-made posts keeps (creator, folder) unique
        _("white-label folder"), max_length=KEY_MAX_LENGTH, null=True, blank=True, editable=False
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("post")
        verbose_name_plural = _("posts")
        ordering = ["-published_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["creator", "source_folder"], name="catalog_post_unique_source_folder"),
        ]
        indexes = [
            models.Index(fields=["creator", "status", "-published_at", "-id"], name="catalog_post_listing"),
        ]

    def __str__(self):
        return self.title


class Media(models.Model):
    class Type(models.TextChoices):
        IMAGE = "image", _("Image")
        VIDEO = "video", _("Video")

    post = models.ForeignKey(Post, verbose_name=_("post"), on_delete=models.CASCADE, related_name="media")
    type = models.CharField(_("type"), max_length=10, choices=Type.choices, default=Type.IMAGE)
    position = models.PositiveIntegerField(_("position"), default=0)
    file = models.FileField(
        _("file"),
        upload_to="media/%Y/%m/",
        storage=private_storage,
        blank=True,
        help_text=_("Uploaded file (private: only subscribers get a link to it)."),
    )
    # Key in WHITELABEL_BUCKET for published white-label media (never shown to
    # visitors without access); NULL for uploads so the column stays unique.
    key = models.CharField(
        _("white-label key"), max_length=KEY_MAX_LENGTH, null=True, blank=True, unique=True, editable=False
    )
    source = models.OneToOneField(
        "whitelabel.WhitelabelMedia",
        verbose_name=_("white-label media"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="catalog_media",
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("media")
        verbose_name_plural = _("media")
        ordering = ["post", "position", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(key__isnull=True) & ~Q(file="")) | (Q(key__isnull=False) & Q(file="")),
                name="catalog_media_file_xor_key",
                violation_error_message=_("A media item needs exactly one of an uploaded file or a white-label key."),
            ),
        ]
        indexes = [models.Index(fields=["post", "position", "id"], name="catalog_media_post_position")]

    def __str__(self):
        return self.key or self.file.name
