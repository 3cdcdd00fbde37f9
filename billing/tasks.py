"""Celery tasks of billing: doors that call services (contract §6, config/beat.py)."""

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


# --- payments: webhooks and reconciliation ---------------------------------


@shared_task(name="billing.tasks.retry_failed_webhooks")
def retry_failed_webhooks() -> dict:
    """Retry failed (and stuck) webhook events whose backoff has passed."""
    from billing.webhooks import retry_failed_events

    counts = retry_failed_events()
    logger.info("webhook retry finished", extra=counts)
    return counts


@shared_task(name="billing.tasks.reconcile_payments")
def reconcile_payments() -> list[str]:
    """Compare the gateways' charges of the last days with our checkouts; fix missed payments."""
    from billing.reconciliation import reconcile_payments as run

    return [report.summary() for report in run()]
