from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import requests
import time_machine
from botocore.config import Config

from catalog import signing
from catalog.signing import SigV4Presigner

KEY = "Ana Júlia/post 1/fotos/1 (2)+a&b~c%.jpg"
AT = datetime(2026, 11, 22, 20, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("endpoint", "region", "style"),
    [
        ("http://127.0.0.1:9000", "us-east-1", "path"),
        (None, "us-east-1", "virtual"),
        (None, "sa-east-1", "virtual"),
        ("https://nyc3.digitaloceanspaces.com", "nyc3", "virtual"),
    ],
)
@pytest.mark.parametrize("token", [None, "session/token+=="])
def test_the_direct_signer_is_byte_identical_to_boto3(endpoint, region, style, token):
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCY",
        aws_session_token=token,
        region_name=region,
        config=Config(signature_version="s3v4", s3={"addressing_style": style}),
    )
    with time_machine.travel(AT, tick=False):
        expected = client.generate_presigned_url("get_object", Params={"Bucket": "wl-bucket", "Key": KEY}, ExpiresIn=3600)
    signer = SigV4Presigner(
        access_key="AKIDEXAMPLE",
        secret_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCY",
        session_token=token,
        region=region,
        endpoint_url=endpoint,
        addressing_style=style,
    )

    assert signer.presign("wl-bucket", KEY, expires=3600, signed_at=AT) == expected


def test_the_settings_signer_matches_the_shared_boto3_client(settings):
    settings.AWS_S3_ENDPOINT_URL = "http://minio:9000"
    with time_machine.travel(AT, tick=False):
        expected = signing.s3_client().generate_presigned_url(
            "get_object", Params={"Bucket": "wl-bucket", "Key": KEY}, ExpiresIn=3600
        )

    assert signing.presign("wl-bucket", KEY, now=AT.timestamp()) == expected


def test_each_key_is_signed_once_per_window(monkeypatch):
    calls = []
    original = SigV4Presigner.presign

    def counting(self, bucket, key, **kwargs):
        calls.append(key)
        return original(self, bucket, key, **kwargs)

    monkeypatch.setattr(SigV4Presigner, "presign", counting)
    start = 1_800_000_000 - 1_800_000_000 % 1800  # a window boundary (TTL 3600 → windows of 1800 s)
    keys = [f"creator/post/{n}.jpg" for n in range(200)]

    first = signing.presign_many("wl-bucket", keys, now=start)
    again = signing.presign_many("wl-bucket", keys, now=start + 1799)
    assert len(calls) == 200 and again == first

    later = signing.presign_many("wl-bucket", keys, now=start + 1800)
    assert len(calls) == 400 and later != first


@pytest.mark.parametrize("offset", [0, 1, 900, 1799])
def test_a_served_url_is_valid_for_at_least_half_the_ttl(offset):
    now = 1_800_000_000 - 1_800_000_000 % 1800 + offset

    url = signing.presign("wl-bucket", "a/b/c.jpg", now=now)

    query = parse_qs(urlsplit(url).query)
    signed_at = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
    expires_at = signed_at + int(query["X-Amz-Expires"][0])
    assert signed_at <= now
    assert expires_at - now >= 3600 / 2


def test_no_credentials_is_a_configuration_error(settings, monkeypatch):
    from django.core.exceptions import ImproperlyConfigured

    settings.AWS_ACCESS_KEY_ID = None
    settings.AWS_SECRET_ACCESS_KEY = None
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    with pytest.raises(ImproperlyConfigured):
        signing.presign("wl-bucket", "k")


@pytest.fixture
def moto_endpoint(settings):
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    settings.AWS_S3_ENDPOINT_URL = f"http://{host}:{port}"
    yield settings.AWS_S3_ENDPOINT_URL
    server.stop()


@pytest.mark.django_db
def test_a_presigned_url_from_the_api_fetches_the_object_from_moto(moto_endpoint, api_client, subscriber):
    from tests.catalog.factories import CreatorFactory, MediaFactory, PostFactory

    client = signing.s3_client()
    client.create_bucket(Bucket="wl-bucket")
    client.put_object(Bucket="wl-bucket", Key=KEY, Body=b"the paid photo")
    creator = CreatorFactory()
    MediaFactory(post=PostFactory(creator=creator), key=KEY)
    api_client.force_login(subscriber)

    url = api_client.get(f"/api/models/{creator.slug}/posts").json()["results"][0]["media"][0]["url"]
    response = requests.get(url, timeout=5)

    assert url.startswith(f"{moto_endpoint}/wl-bucket/")
    assert response.status_code == 200 and response.content == b"the paid photo"
