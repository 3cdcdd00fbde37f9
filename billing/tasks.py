"""Celery doors to billing services. Retries live here, not in the services."""

import logging
from dataclasses import asdict

from celery import shared_task
from django.db import DatabaseError

logger = logging.getLogger(__name__)


@shared_task(
    name="billing.tasks.sweep_subscriptions",
    autoretry_for=(DatabaseError,),
    retry_backoff=30,
    max_retries=3,
    acks_late=True,
)
def sweep_subscriptions() -> dict:
    """Beat runs it every 5 minutes (config/beat.py); safe to overlap with itself."""
    from billing import services

    result = services.sweep_subscriptions()
    summary = asdict(result)
    summary.pop("renewal_checkout_ids", None)
    return summary


@shared_task(
    name="billing.tasks.send_renewal_notices",
    autoretry_for=(OSError,),
    retry_backoff=60,
    max_retries=5,
)
def send_renewal_notices(*, notices: list) -> int:
    """E-mails a chunk of renewal links, queued by the sweep after its commit."""
    from billing import services

    return services.send_renewal_notices(notices=notices)


# --- payments: webhooks and reconciliation ---------------------------------


@shared_task(name="billing.tasks.retry_failed_webhooks")
def retry_failed_webhooks() -> dict:
    """Retry failed (and stuck) webhook events whose backoff has passed (config/beat.py: every 10 min)."""
    from billing.webhooks import retry_failed_events

    counts = retry_failed_events()
    logger.info("webhook retry finished", extra=counts)
    return counts


@shared_task(name="billing.tasks.reconcile_payments")
def reconcile_payments() -> list[str]:
    """Compare the gateways' charges of the last days with our checkouts; fix missed payments (daily)."""
    from billing.reconciliation import reconcile_payments as run

    return [report.summary() for report in run()]
