"""
Public previews: what a visitor without a subscription sees of a post.

A preview is *derived* from the post's first image: scaled down to at most
PREVIEW_SIZE pixels and strongly blurred, re-encoded as JPEG, and stored in
the public storage under `previews/`. It is a teaser, not the paid file, and
its URL carries neither a signature nor the paid object's key. Admins may
upload their own preview instead; an uploaded one is never replaced.
"""

import io
import logging

from celery import shared_task
from django.conf import settings
from django.core.files.base import ContentFile
from PIL import Image, ImageFilter

from catalog.models import Media, Post
from catalog.page_cache import bump_catalog_version
from catalog.signing import s3_client

logger = logging.getLogger(__name__)

PREVIEW_SIZE = 480
PREVIEW_REDUCTION = 24  # 480 px → 20 px of actual information
PREVIEW_BLUR_RADIUS = 4
PREVIEW_QUALITY = 60


def make_preview(data: bytes) -> bytes:
    """A small, blurred JPEG from image bytes."""
    with Image.open(io.BytesIO(data)) as image:
        image.draft("RGB", (PREVIEW_SIZE, PREVIEW_SIZE))  # JPEG: decode at reduced size
        image = image.convert("RGB")
        image.thumbnail((PREVIEW_SIZE, PREVIEW_SIZE))
        # Down to a few dozen pixels and back up, then a light blur: the detail is
        # gone for good (a large Gaussian blur alone costs ~10x the time).
        size = image.size
        tiny = image.resize((max(1, size[0] // PREVIEW_REDUCTION), max(1, size[1] // PREVIEW_REDUCTION)), Image.BOX)
        image = tiny.resize(size, Image.BICUBIC).filter(ImageFilter.GaussianBlur(PREVIEW_BLUR_RADIUS))
        out = io.BytesIO()
        image.save(out, format="JPEG", quality=PREVIEW_QUALITY, optimize=True)
    return out.getvalue()


def _read(item: Media) -> bytes:
    if item.key:
        return s3_client().get_object(Bucket=settings.WHITELABEL_BUCKET, Key=item.key)["Body"].read()
    with item.file.open("rb") as handle:
        return handle.read()


def generate_previews(*, post_ids: list[int]) -> int:
    """Give each of these posts without a preview one made from its first image. Returns how many."""
    posts = list(Post.objects.filter(pk__in=post_ids, preview="").only("id"))
    if not posts:
        return 0
    first_images: dict[int, Media] = {}
    for item in (
        Media.objects.filter(post_id__in=[p.pk for p in posts], type=Media.Type.IMAGE)
        .order_by("post_id", "position", "id")
        .only("id", "post_id", "key", "file")
    ):
        first_images.setdefault(item.post_id, item)
    made = 0
    storage = Post._meta.get_field("preview").storage
    for post in posts:
        item = first_images.get(post.pk)
        if item is None:
            continue  # video-only post: no preview; the site shows a placeholder
        try:
            data = make_preview(_read(item))
        except Exception:  # one bad file must not stop the batch
            logger.exception("preview failed", extra={"post_id": post.pk, "media_id": item.pk})
            continue
        name = storage.save(f"previews/{post.pk}.jpg", ContentFile(data))
        # Compare-and-set: an admin upload in the meantime wins.
        if Post.objects.filter(pk=post.pk, preview="").update(preview=name):
            made += 1
            bump_catalog_version()
        else:
            storage.delete(name)
    return made


@shared_task(name="catalog.tasks.generate_previews")
def generate_previews_task(*, post_ids: list[int]) -> int:
    return generate_previews(post_ids=post_ids)
