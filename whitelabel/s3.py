"""
The S3 clients of the project, built from settings (contract §2) by one
factory, `build_client`: the white-label sync's (`get_client`) and
catalog.signing's, which presigns and downloads media.

- One client per process, reused: building a client costs milliseconds and a
  session far more (perf-facts). It is rebuilt only when the AWS_* settings
  change (tests, or `override_settings`).
- `signature_version="s3v4"`: without it a us-east-1 client signs with the
  deprecated SigV2.
- A `datetime.fromisoformat` timestamp parser is registered on the client's
  own botocore session: parsing `LastModified` with dateutil is ~70% of a
  listing's time, and this one is several times faster. Anything it cannot
  read falls back to botocore's parser.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import boto3
import botocore.session
from botocore.config import Config
from botocore.parsers import DEFAULT_TIMESTAMP_PARSER
from django.conf import settings

from whitelabel.keys import normalize_prefix

_lock = threading.Lock()
_client = None
_client_settings: tuple | None = None


def parse_timestamp(value):
    """botocore timestamp parser: ISO 8601 (`2024-01-02T03:04:05.000Z`) fast, anything else via botocore."""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return DEFAULT_TIMESTAMP_PARSER(value)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed
    return DEFAULT_TIMESTAMP_PARSER(value)


def make_session() -> boto3.session.Session:
    """A boto3 session whose response parsers use the fast timestamp parser."""
    core = botocore.session.get_session()
    core.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=parse_timestamp)
    return boto3.session.Session(botocore_session=core)


def _settings_tuple() -> tuple:
    return (
        settings.AWS_S3_ENDPOINT_URL,
        settings.AWS_ACCESS_KEY_ID,
        settings.AWS_SECRET_ACCESS_KEY,
        settings.AWS_S3_REGION_NAME,
    )


def build_client(*, addressing_style: str | None = None):
    """
    A new S3 client from the AWS_* settings: the one way this project builds
    one (the sync's client below, catalog.signing's for media). Callers keep
    and reuse what it returns.
    """
    s3_options = {"addressing_style": addressing_style} if addressing_style else None
    return make_session().client(
        "s3",
        endpoint_url=settings.AWS_S3_ENDPOINT_URL,
        aws_access_key_id=settings.AWS_ACCESS_KEY_ID,
        aws_secret_access_key=settings.AWS_SECRET_ACCESS_KEY,
        region_name=settings.AWS_S3_REGION_NAME or "us-east-1",
        config=Config(
            signature_version="s3v4",
            retries={"max_attempts": 5, "mode": "standard"},
            max_pool_connections=10,
            s3=s3_options,
        ),
    )


def get_client():
    """The process-wide S3 client for the white-label bucket (thread-safe, like boto3 clients)."""
    global _client, _client_settings
    current = _settings_tuple()
    with _lock:
        if _client is None or _client_settings != current:
            _client = build_client()
            _client_settings = current
        return _client


def reset_client() -> None:
    """Forget the cached client (tests start moto before building one)."""
    global _client, _client_settings
    with _lock:
        _client = None
        _client_settings = None


def bucket_name() -> str | None:
    return settings.WHITELABEL_BUCKET or None


def bucket_prefix() -> str:
    return normalize_prefix(settings.WHITELABEL_PREFIX)


def sync_enabled() -> bool:
    return bool(bucket_name())


def public_base_url() -> str:
    """`WHITELABEL_CDN_BASE_URL`, else derived from the public endpoint and bucket (path style), else AWS virtual host."""
    if settings.WHITELABEL_CDN_BASE_URL:
        return settings.WHITELABEL_CDN_BASE_URL.rstrip("/")
    bucket = bucket_name() or ""
    endpoint = settings.AWS_S3_PUBLIC_ENDPOINT_URL or settings.AWS_S3_ENDPOINT_URL
    if endpoint:
        return f"{endpoint.rstrip('/')}/{bucket}"
    region = settings.AWS_S3_REGION_NAME or "us-east-1"
    return f"https://{bucket}.s3.{region}.amazonaws.com"
