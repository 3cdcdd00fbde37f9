"""The integrations' Celery tasks, defined beside the code they run (services never import tasks); imported here for autodiscovery."""

from integrations.conversions import send_purchase_task
from integrations.outbox import deliver_due_webhooks_task, deliver_events_task
from integrations.retention import prune_outbox_task

__all__ = ["deliver_due_webhooks_task", "deliver_events_task", "prune_outbox_task", "send_purchase_task"]
