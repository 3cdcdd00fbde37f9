"""
Billing's e-mails and the Celery tasks that send them, one module per kind: renewals (notices, a
refused card, recovery reminders), receipts, and lifecycle (cancellation, refund, withdrawal, past
due, expired). Services queue them after commit through the `queue_*` functions re-exported here and
never import tasks; nothing here changes a row. Every task keeps its `billing.tasks.*` name, so
messages queued before a deploy still find it.
"""

from billing.notifications.lifecycle import (
    queue_cancellation_email,
    queue_expiry_email,
    queue_refund_email,
    queue_swept_emails,
    send_cancellation_email,
    send_lapse_emails,
    send_refund_email,
    send_refund_email_task,
    send_withdrawal_email,
)
from billing.notifications.receipts import (
    queue_marketplace_receipt_after_commit,
    queue_receipt_after_commit,
    send_marketplace_receipt,
    send_receipt,
)
from billing.notifications.renewals import (
    card_label,
    checkout_link,
    email_of_unsubscribe_token,
    queue_card_refused_notice,
    queue_recovery_reminders,
    queue_renewal_notices,
    reminder_unsubscribe_link,
    send_card_refused,
    send_recovery_reminders,
    send_renewal_notices,
)
from billing.notifications.retry import EMAIL_RETRY

__all__ = [
    "EMAIL_RETRY",
    "card_label",
    "checkout_link",
    "email_of_unsubscribe_token",
    "queue_cancellation_email",
    "queue_card_refused_notice",
    "queue_expiry_email",
    "queue_marketplace_receipt_after_commit",
    "queue_receipt_after_commit",
    "queue_recovery_reminders",
    "queue_refund_email",
    "queue_renewal_notices",
    "queue_swept_emails",
    "reminder_unsubscribe_link",
    "send_cancellation_email",
    "send_card_refused",
    "send_lapse_emails",
    "send_marketplace_receipt",
    "send_receipt",
    "send_recovery_reminders",
    "send_refund_email",
    "send_refund_email_task",
    "send_renewal_notices",
    "send_withdrawal_email",
]
