"""
AWS_S3_PUBLIC_ENDPOINT_URL (contract §2): the site reaches S3 by an internal
name (docker compose: http://minio:9000) while browsers are sent to the public
endpoint, for presigned and public media URLs alike.
"""

from datetime import UTC, datetime

import boto3
import time_machine
from botocore.config import Config

from catalog import signing
from catalog.storage import public_storage
from whitelabel.s3 import public_base_url

AT = datetime(2026, 11, 22, 20, 0, tzinfo=UTC)
KEY = "Ana Júlia/post 1/foto (1).jpg"


def use_endpoints(settings, public):
    settings.AWS_S3_ENDPOINT_URL = "http://minio:9000"
    settings.AWS_S3_PUBLIC_ENDPOINT_URL = public
    settings.AWS_ACCESS_KEY_ID = "AKIDEXAMPLE"
    settings.AWS_SECRET_ACCESS_KEY = "secret-example"
    settings.AWS_S3_REGION_NAME = "us-east-1"


def test_presigned_urls_are_signed_for_the_public_endpoint(settings):
    # given
    use_endpoints(settings, "http://localhost:9000")
    public_client = boto3.client(
        "s3",
        endpoint_url="http://localhost:9000",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret-example",
        region_name="us-east-1",
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    with time_machine.travel(AT, tick=False):
        expected = public_client.generate_presigned_url("get_object", Params={"Bucket": "wl-bucket", "Key": KEY}, ExpiresIn=3600)

    # when
    url = signing.presign("wl-bucket", KEY, now=AT.timestamp())

    # then: the host the browser asks is the one the signature covers
    assert url.startswith("http://localhost:9000/wl-bucket/")
    assert url == expected


def test_without_a_public_endpoint_urls_use_the_endpoint(settings):
    use_endpoints(settings, None)

    assert signing.presign("wl-bucket", KEY, now=AT.timestamp()).startswith("http://minio:9000/wl-bucket/")
    settings.WHITELABEL_BUCKET = "wl-bucket"
    assert public_base_url() == "http://minio:9000/wl-bucket"


def test_whitelabel_public_urls_use_the_public_endpoint(settings):
    use_endpoints(settings, "https://media.example.org")
    settings.WHITELABEL_BUCKET = "wl-bucket"
    settings.WHITELABEL_CDN_BASE_URL = None

    assert public_base_url() == "https://media.example.org/wl-bucket"


def test_public_uploads_get_plain_urls_on_the_public_endpoint(settings):
    use_endpoints(settings, "http://localhost:9000")
    settings.AWS_STORAGE_BUCKET_NAME = "media"
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "storages.backends.s3.S3Storage"}}

    url = public_storage().url("previews/a b.jpg")

    assert url == "http://localhost:9000/media/public/previews/a%20b.jpg"
