"""
Presigned media URLs, cheap enough to put 200 on one page.

Signing is the cost to design around (docs/perf-facts.md: boto3 presigns
~1,900 URLs/s with a reused client, 80/s with a client per call). So:

1. One boto3 client per process (`s3_client()`), built from the AWS_*
   settings with SigV4 and an explicit addressing style. It is the source of
   credentials (including temporary ones) and is reused for downloads.
2. A direct HMAC SigV4 query signer (`SigV4Presigner`) producing the same
   bytes as botocore's `generate_presigned_url` (tests compare them) at ~10×
   the speed, with the day's signing key cached.
3. Time windows: a URL is signed with `X-Amz-Date` at the start of the
   current window of TTL/2 seconds and `X-Amz-Expires` = TTL. Within a window
   the URL of a key is the same, so it is cached (key, window) → URL and each
   key is signed at most once per window per process, and every URL served
   still has at least TTL/2 of validity left. Identical URLs also let
   browsers and CDNs cache the media.
"""

import hashlib
import hmac
import threading
import time
from datetime import UTC, datetime
from urllib.parse import quote

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

from whitelabel.s3 import build_client

_ALGORITHM = "AWS4-HMAC-SHA256"
_UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
# Entries per process before the URL cache is dropped wholesale (a window's
# worth of a busy site; each entry is ~400 bytes).
URL_CACHE_MAX_ENTRIES = 200_000


def _quote(value: str, safe: str = "-_.~") -> str:
    return quote(value, safe=safe)


class SigV4Presigner:
    """Presigned GET URLs for S3 (SigV4, query-string auth, unsigned payload)."""

    def __init__(
        self,
        *,
        access_key: str,
        secret_key: str,
        region: str,
        endpoint_url: str | None = None,
        session_token: str | None = None,
        addressing_style: str = "auto",
    ):
        self.access_key = access_key
        self.secret_key = secret_key
        self.session_token = session_token
        self.region = region
        self.endpoint_url = endpoint_url.rstrip("/") if endpoint_url else None
        self.addressing_style = addressing_style
        self._signing_keys: dict[str, bytes] = {}

    def _signing_key(self, datestamp: str) -> bytes:
        key = self._signing_keys.get(datestamp)
        if key is None:
            key = ("AWS4" + self.secret_key).encode()
            for part in (datestamp, self.region, "s3", "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            self._signing_keys = {datestamp: key}  # one day at a time
        return key

    def _base(self, bucket: str) -> tuple[str, str, str]:
        """(scheme://host, host, path prefix) the way botocore addresses the bucket."""
        if self.endpoint_url and self.addressing_style != "virtual":
            scheme, _, host = self.endpoint_url.partition("://")
            return self.endpoint_url, host, "/" + bucket
        if self.endpoint_url:
            scheme, _, host = self.endpoint_url.partition("://")
            host = f"{bucket}.{host}"
            return f"{scheme}://{host}", host, ""
        host = f"{bucket}.s3.amazonaws.com" if self.region == "us-east-1" else f"{bucket}.s3.{self.region}.amazonaws.com"
        return f"https://{host}", host, ""

    def presign(self, bucket: str, key: str, *, expires: int, signed_at: datetime) -> str:
        origin, host, prefix = self._base(bucket)
        path = prefix + "/" + _quote(key, safe="/~")
        amz_date = signed_at.strftime("%Y%m%dT%H%M%SZ")
        datestamp = amz_date[:8]
        scope = f"{datestamp}/{self.region}/s3/aws4_request"
        params = {
            "X-Amz-Algorithm": _ALGORITHM,
            "X-Amz-Credential": f"{self.access_key}/{scope}",
            "X-Amz-Date": amz_date,
            "X-Amz-Expires": str(expires),
            "X-Amz-SignedHeaders": "host",
        }
        if self.session_token:
            params["X-Amz-Security-Token"] = self.session_token
        query = "&".join(f"{_quote(k)}={_quote(v)}" for k, v in params.items())
        canonical_query = "&".join(f"{_quote(k)}={_quote(v)}" for k, v in sorted(params.items()))
        canonical_request = f"GET\n{path}\n{canonical_query}\nhost:{host}\n\nhost\n{_UNSIGNED_PAYLOAD}"
        string_to_sign = "\n".join(
            (_ALGORITHM, amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest())
        )
        signature = hmac.new(self._signing_key(datestamp), string_to_sign.encode(), hashlib.sha256).hexdigest()
        return f"{origin}{path}?{query}&X-Amz-Signature={signature}"


# ---------------------------------------------------------------------------
# The process-wide client, signer and URL cache
# ---------------------------------------------------------------------------
_lock = threading.Lock()
_client = None
_url_cache: dict[tuple[str, str], tuple[int, str]] = {}


def _addressing_style() -> str:
    # Custom endpoints (MinIO, moto, Spaces by IP) want path-style; AWS wants virtual hosts.
    return "path" if settings.AWS_S3_ENDPOINT_URL else "virtual"


def _region() -> str:
    return settings.AWS_S3_REGION_NAME or "us-east-1"


def s3_client():
    """The one boto3 S3 client of this process (SigV4, settings' endpoint and credentials)."""
    global _client
    if _client is None:
        with _lock:
            if _client is None:
                _client = build_client(addressing_style=_addressing_style())
    return _client


def presigner() -> SigV4Presigner:
    """A signer holding the client's current credentials (temporary ones refresh through boto3)."""
    credentials = s3_client()._request_signer._credentials
    if credentials is None:
        raise ImproperlyConfigured("No AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.")
    frozen = credentials.get_frozen_credentials()
    signer = _presigner_cache.get(frozen)
    if signer is None:
        signer = SigV4Presigner(
            access_key=frozen.access_key,
            secret_key=frozen.secret_key,
            session_token=frozen.token,
            region=_region(),
            # Signed for the host the browser will ask (the signature covers it), not the internal one.
            endpoint_url=settings.AWS_S3_PUBLIC_ENDPOINT_URL or settings.AWS_S3_ENDPOINT_URL,
            addressing_style=_addressing_style(),
        )
        _presigner_cache.clear()
        _presigner_cache[frozen] = signer
    return signer


_presigner_cache: dict = {}


def window_length(ttl: int | None = None) -> int:
    ttl = ttl or settings.SIGNED_URL_TTL
    return max(ttl // 2, 1)


def presign_many(bucket: str, keys, *, now: float | None = None) -> dict[str, str]:
    """
    `{key: presigned GET URL}` for the keys of one bucket. Each (key, window)
    is signed once per process; a URL handed out stays valid for at least
    SIGNED_URL_TTL/2 seconds.
    """
    ttl = settings.SIGNED_URL_TTL
    length = window_length(ttl)
    window = int(now if now is not None else time.time()) // length
    signed_at = None
    signer = None
    urls = {}
    for key in keys:
        cached = _url_cache.get((bucket, key))
        if cached is not None and cached[0] == window:
            urls[key] = cached[1]
            continue
        if signer is None:
            signer = presigner()
            signed_at = datetime.fromtimestamp(window * length, tz=UTC)
        url = signer.presign(bucket, key, expires=ttl, signed_at=signed_at)
        if len(_url_cache) >= URL_CACHE_MAX_ENTRIES:
            _url_cache.clear()
        _url_cache[(bucket, key)] = (window, url)
        urls[key] = url
    return urls


def presign(bucket: str, key: str, *, now: float | None = None) -> str:
    return presign_many(bucket, [key], now=now)[key]


def reset() -> None:
    """Forget the client, signers and URLs (settings changed, or tests)."""
    global _client
    with _lock:
        _client = None
        _presigner_cache.clear()
        _url_cache.clear()


@receiver(setting_changed)
def _reset_on_setting_change(*, setting, **kwargs):
    if setting.startswith("AWS_") or setting in {"SIGNED_URL_TTL", "WHITELABEL_BUCKET"}:
        reset()
