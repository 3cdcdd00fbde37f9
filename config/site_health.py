"""
The site's health, as the admin index opens with it (contract §5): what needs a person now.
Each figure costs one query whatever the amount of data (a count or a last row), and each has
a filtered admin list behind it, which the index links to.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from billing.ledger_models import MoneyAuditRun
from billing.models import ReconciliationItem, WebhookEvent
from integrations.models import WebhookEndpoint
from integrations.outbox import failing_endpoints
from whitelabel.models import SyncRun

POSTBACK_WINDOW = timedelta(hours=24)


def postbacks_needing_attention(*, now: datetime):
    """Postbacks of the last 24 h that failed or were never processed (the webhook events' filter too)."""
    return WebhookEvent.objects.filter(
        received_at__gte=now - POSTBACK_WINDOW, outcome__in=[WebhookEvent.Outcome.FAILED, WebhookEvent.Outcome.RECEIVED]
    )


@dataclass(frozen=True)
class SiteHealth:
    failed_postbacks: int
    failing_endpoints: list[WebhookEndpoint]
    last_sync: SyncRun | None  # the last white-label sync that finished
    open_review_items: int  # reconciliation items waiting for a person
    last_audit: MoneyAuditRun | None

    @property
    def last_sync_failed(self) -> bool:
        return self.last_sync is not None and self.last_sync.status == SyncRun.Status.FAILED


def get_site_health(*, now: datetime | None = None) -> SiteHealth:
    """Five queries, the same with ten rows or ten million."""
    now = now or timezone.now()
    return SiteHealth(
        failed_postbacks=postbacks_needing_attention(now=now).count(),
        failing_endpoints=list(failing_endpoints(now=now).order_by("url")),
        last_sync=SyncRun.objects.exclude(status=SyncRun.Status.RUNNING).order_by("-started_at", "-pk").first(),
        open_review_items=ReconciliationItem.objects.filter(resolved=False).count(),
        last_audit=MoneyAuditRun.objects.order_by("-started_at").first(),
    )
