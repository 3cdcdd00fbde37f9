from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.models import WebhookEvent
from config.site_health import get_site_health, postbacks_needing_attention

pytestmark = pytest.mark.django_db


def test_a_healthy_site_has_nothing_to_show():
    health = get_site_health()

    assert health.failed_postbacks == 0 and health.failing_endpoints == [] and health.open_review_items == 0
    assert health.last_sync is None and not health.last_sync_failed and health.last_audit is None


def test_it_counts_each_problem(make_trouble):
    now = make_trouble(3)

    health = get_site_health(now=now)

    assert health.failed_postbacks == 3
    assert len(health.failing_endpoints) == 3
    assert health.open_review_items == 3
    assert health.last_sync_failed
    assert health.last_audit.violation_count == 3


def test_postbacks_older_than_a_day_or_processed_are_not_counted(make_trouble):
    now = make_trouble(1)
    WebhookEvent.objects.create(provider="sandbox", event_id="old", body="{}", outcome="failed", received_at=now - timedelta(hours=25))
    WebhookEvent.objects.create(provider="sandbox", event_id="done", body="{}", outcome="processed", received_at=now)

    assert postbacks_needing_attention(now=now).count() == 1


def test_its_queries_do_not_grow_with_the_data(make_trouble):
    def queries_with(n):
        now = make_trouble(n)
        with CaptureQueriesContext(connection) as queries:
            get_site_health(now=now)
        return len(queries)

    assert queries_with(1) == queries_with(30) == 5
