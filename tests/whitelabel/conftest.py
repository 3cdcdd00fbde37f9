"""A moto S3 bucket wired into the settings the sync reads (contract §2)."""

from dataclasses import dataclass

import pytest
from moto import mock_aws

from whitelabel import s3

BUCKET = "creatorflix-wl-test"
CDN = "https://cdn.example.com"


@dataclass
class Bucket:
    client: object
    name: str

    def put(self, *keys: str, body: bytes = b"x") -> None:
        for key in keys:
            self.client.put_object(Bucket=self.name, Key=key, Body=body)

    def delete(self, *keys: str) -> None:
        for key in keys:
            self.client.delete_object(Bucket=self.name, Key=key)

    def clear(self) -> None:
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.name):
            for obj in page.get("Contents", []):
                self.client.delete_object(Bucket=self.name, Key=obj["Key"])


@pytest.fixture
def s3_settings(settings):
    settings.WHITELABEL_BUCKET = BUCKET
    settings.WHITELABEL_PREFIX = ""
    settings.WHITELABEL_CDN_BASE_URL = CDN
    settings.AWS_S3_ENDPOINT_URL = None
    settings.AWS_ACCESS_KEY_ID = "testing"
    settings.AWS_SECRET_ACCESS_KEY = "testing"
    settings.AWS_S3_REGION_NAME = "us-east-1"
    settings.WHITELABEL_PAGE_SIZE = 1000
    return settings


@pytest.fixture
def bucket(s3_settings):
    with mock_aws():
        s3.reset_client()
        client = s3.get_client()
        client.create_bucket(Bucket=BUCKET)
        yield Bucket(client=client, name=BUCKET)
    s3.reset_client()


@pytest.fixture
def fail_listing_on_call(bucket):
    """fail_listing_on_call(n): the n-th ListObjectsV2 call of the shared client raises a network error."""
    from botocore.exceptions import EndpointConnectionError

    registered = []

    def arm(n: int):
        calls = []

        def handler(**kwargs):
            calls.append(1)
            if len(calls) == n:
                raise EndpointConnectionError(endpoint_url="https://s3.example.com")

        bucket.client.meta.events.register("before-call.s3.ListObjectsV2", handler)
        registered.append(handler)
        return calls

    yield arm
    for handler in registered:
        bucket.client.meta.events.unregister("before-call.s3.ListObjectsV2", handler)


@pytest.fixture
def another_sync_running(db):
    """Make the sync lock look held by someone else, the way each database backend sees it."""
    from django.db import connection, connections

    from whitelabel.models import SyncRun
    from whitelabel.sync.lock import ADVISORY_LOCK_ID

    if connection.vendor == "postgresql":
        other = connections.create_connection("default")
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [ADVISORY_LOCK_ID])
        yield
        other.close()  # ends the session, releasing the lock
    else:
        SyncRun.objects.create(status=SyncRun.Status.RUNNING)
        yield


@pytest.fixture
def eager_tasks():
    """Run Celery tasks in-process, as `make run` does without Redis, whatever REDIS_URL says."""
    from config.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


@pytest.fixture(autouse=True)
def _english(settings):
    """Assertions below read English; the Portuguese catalogue has its own tests."""
    settings.LANGUAGE_CODE = "en"
