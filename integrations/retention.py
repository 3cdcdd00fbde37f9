"""
The outbox is pruned (contract §6, `integrations.tasks.prune_outbox`, daily): delivered deliveries
older than OUTBOX_RETENTION_DAYS go with their attempts, then the events none of whose deliveries
are left (the events carry the customer's name, e-mail and phone: nothing to keep once delivered).
A delivery still pending, or failed (given up, waiting for a person to replay it), is kept however
old, and so is its event.

Deleting is done in batches of `batch_size` rows, each its own short transaction, so no statement
holds locks on many rows at once while the workers deliver: a backlog of years goes out in many
small deletes, not one long one.
"""

import logging
from datetime import datetime, timedelta

from celery import shared_task
from django.conf import settings
from django.db.models import Exists, OuterRef
from django.utils import timezone

from integrations.models import Delivery, OutboxEvent

logger = logging.getLogger(__name__)

BATCH_SIZE = 1000


def prune_outbox(*, now: datetime | None = None, batch_size: int = BATCH_SIZE) -> dict:
    """Delete delivered deliveries (and their attempts) past the retention, then the events left without deliveries."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.OUTBOX_RETENTION_DAYS)
    counts = {"deliveries": 0, "events": 0}

    delivered = Delivery.objects.filter(status=Delivery.Status.DELIVERED, delivered_at__lt=cutoff).order_by()
    while pks := list(delivered.values_list("pk", flat=True)[:batch_size]):
        # Attempts go first by cascade; a delivery re-queued since it was selected is left alone.
        _, deleted = Delivery.objects.filter(pk__in=pks, status=Delivery.Status.DELIVERED).delete()
        counts["deliveries"] += deleted.get("integrations.Delivery", 0)

    orphaned = OutboxEvent.objects.filter(created_at__lt=cutoff).filter(~Exists(Delivery.objects.filter(event=OuterRef("pk")))).order_by()
    while pks := list(orphaned.values_list("pk", flat=True)[:batch_size]):
        # Checked again in the delete itself: only events still without a delivery go.
        _, deleted = OutboxEvent.objects.filter(pk__in=pks).filter(~Exists(Delivery.objects.filter(event=OuterRef("pk")))).delete()
        counts["events"] += deleted.get("integrations.OutboxEvent", 0)

    logger.info("outbox pruned", extra=counts)
    return counts


@shared_task(name="integrations.tasks.prune_outbox")
def prune_outbox_task() -> dict:
    """Beat, daily (config/beat.py)."""
    return prune_outbox()
