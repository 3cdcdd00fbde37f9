"""
Where catalog files live.

- `public_storage`: images anyone may see (creator icon/banner/thumbnail and
  the blurred post previews). Plain URLs, never signed. On S3 this is the
  uploads bucket below `public/` with query-string auth off: that prefix needs
  a bucket policy allowing anonymous `s3:GetObject` (see docs/catalog.md).
- `private_storage`: paid media uploaded by admins. On S3 this is the uploads
  bucket (private; URLs presigned by `catalog.signing`). On local file storage
  (`make run`) it is a directory *outside* MEDIA_ROOT, so the DEBUG media
  route cannot serve it: files are served by `catalog.api.media_file`, which
  checks access first.
"""

from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.core.files.storage import FileSystemStorage, Storage, storages
from django.utils.functional import cached_property


def default_storage_is_s3() -> bool:
    return settings.STORAGES["default"]["BACKEND"].endswith("S3Storage")


class PrivateFileSystemStorage(FileSystemStorage):
    """`<MEDIA_ROOT>-private`: next to MEDIA_ROOT, never below MEDIA_URL."""

    @cached_property
    def base_location(self):
        # Recomputed when MEDIA_ROOT changes (FileSystemStorage clears it on setting_changed).
        media_root = Path(settings.MEDIA_ROOT)
        return str(media_root.with_name(media_root.name + "-private"))

    @cached_property
    def base_url(self):
        return None

    def url(self, name):
        # No public URL on purpose: links go through catalog.selectors.media_urls()
        # (the access-checked view). Empty, not an error, so form widgets still render.
        return ""


def private_storage() -> Storage:
    if default_storage_is_s3():
        return storages["default"]
    return PrivateFileSystemStorage()


def public_storage() -> Storage:
    if default_storage_is_s3():
        from storages.backends.s3 import S3Storage  # imported when a bucket is configured: local media needs no boto3

        return S3Storage(location="public", querystring_auth=False, file_overwrite=False, **_public_url_options())
    return storages["default"]


def _public_url_options() -> dict:
    """
    Plain URLs on the endpoint the browser reaches (AWS_S3_PUBLIC_ENDPOINT_URL),
    path-style like the site's own client: `http://localhost:9000/<bucket>/public/...`
    rather than the internal `http://minio:9000/...`. On AWS itself, storages' default.
    """
    public = settings.AWS_S3_PUBLIC_ENDPOINT_URL
    if not public or not settings.AWS_S3_ENDPOINT_URL or public == settings.AWS_S3_ENDPOINT_URL:
        return {}
    parts = urlsplit(public)
    return {
        "custom_domain": f"{parts.netloc}{parts.path.rstrip('/')}/{settings.AWS_STORAGE_BUCKET_NAME}",
        "url_protocol": f"{parts.scheme}:",
    }
