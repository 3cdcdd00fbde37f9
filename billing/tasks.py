"""Celery doors to billing services. Retries live here, not in the services (e-mail tasks: billing.notifications)."""

import logging
from dataclasses import asdict

from celery import shared_task
from django.db import DatabaseError
from django.utils import timezone

from billing import audit, reconciliation, services, webhooks

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
    result = services.sweep_subscriptions()
    summary = asdict(result)
    summary.pop("renewal_checkout_ids", None)
    return summary


@shared_task(name="billing.tasks.retry_failed_webhooks")
def retry_failed_webhooks() -> dict:
    """Retry failed (and stuck) webhook events whose backoff has passed (config/beat.py: every 10 min)."""
    counts = webhooks.retry_failed_events()
    logger.info("webhook retry finished", extra=counts)
    return counts


@shared_task(name="billing.tasks.reconcile_payments")
def reconcile_payments() -> list[str]:
    """Compare the gateways' charges of the last days with our checkouts; fix missed payments (daily)."""
    return [report.summary() for report in reconciliation.reconcile_payments()]


@shared_task(name="billing.tasks.audit_money")
def audit_money() -> dict:
    """The money audit of contract §9 (config/beat.py: daily); its run is kept for the admin's money audit page."""
    started_at = timezone.now()
    report = audit.run_audit(now=started_at)
    run = audit.record_audit_run(report, started_at=started_at)
    if report.violations:
        logger.error("money audit found violations", extra={"summary": report.summary(), "run": run.pk})
    else:
        logger.info("money audit clean", extra={"summary": report.summary(), "run": run.pk})
    return {"violations": len(report.violations), "counts": report.counts(), "queries": report.queries}
