"""
The periodic tasks (contract §6), declared in one place. They are created in
django-celery-beat's tables after `migrate` if missing; an admin's later edits
(schedule, enabled flag) are kept, never overwritten.
"""

from django.conf import settings
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

PERIODIC_TASKS = [
    # name, task, interval in seconds (or a crontab dict)
    {"name": "Sync white-label bucket", "task": "whitelabel.tasks.sync_bucket", "every": 15 * 60},  # */15 * * * *
    {"name": "Sweep subscriptions", "task": "billing.tasks.sweep_subscriptions", "every": 5 * 60},  # */5 * * * *
    # Every 15 s: a postback whose worker died is retried within a minute (billing.webhooks.STUCK_AFTER).
    {"name": "Retry failed webhooks", "task": "billing.tasks.retry_failed_webhooks", "every": 15},
    {"name": "Deliver outbound webhooks", "task": "integrations.tasks.deliver_due_webhooks", "every": 60},  # * * * * *
    {"name": "Reconcile payments", "task": "billing.tasks.reconcile_payments", "crontab": {"minute": "30", "hour": "4"}},  # 30 4 * * *
    {"name": "Audit money", "task": "billing.tasks.audit_money", "crontab": {"minute": "0", "hour": "5"}},  # 0 5 * * *
    {"name": "Prune outbox", "task": "integrations.tasks.prune_outbox", "crontab": {"minute": "10", "hour": "5"}},  # 10 5 * * *
    {"name": "Clear expired sessions", "task": "accounts.tasks.clear_expired_sessions", "crontab": {"minute": "20", "hour": "5"}},  # 20 5 * * *
]


def ensure_periodic_tasks(**kwargs) -> None:
    """
    An interval task expires after its own interval: while the workers are down, beat keeps
    queueing (the retry every 15 s, 240 an hour); when they come back, the runs that waited
    longer than one interval are dropped, not all run, since the next one does the same work.
    """
    for spec in PERIODIC_TASKS:
        if PeriodicTask.objects.filter(name=spec["name"]).exists():
            continue
        if "every" in spec:
            interval, _ = IntervalSchedule.objects.get_or_create(every=spec["every"], period=IntervalSchedule.SECONDS)
            PeriodicTask.objects.create(name=spec["name"], task=spec["task"], interval=interval, expire_seconds=spec["every"])
        else:
            crontab, _ = CrontabSchedule.objects.get_or_create(timezone=settings.TIME_ZONE, **spec["crontab"])
            PeriodicTask.objects.create(name=spec["name"], task=spec["task"], crontab=crontab)
