from smtplib import SMTPException

from celery import shared_task
from django.conf import settings


@shared_task(
    name="accounts.tasks.send_set_password_email",
    autoretry_for=(SMTPException, OSError),
    retry_backoff=30,
    # At most TASK_RETRY_WAIT_MAX between tries (it must stay below the broker's visibility timeout);
    # 20 tries cover about an hour and a half of SMTP outage.
    retry_backoff_max=settings.TASK_RETRY_WAIT_MAX,
    max_retries=20,
)
def send_set_password_email(user_id: int) -> None:
    from accounts.services import send_set_password_email as send

    send(user_id=user_id)


@shared_task(
    name="accounts.tasks.send_confirmation_email",
    autoretry_for=(SMTPException, OSError),
    retry_backoff=30,
    # At most TASK_RETRY_WAIT_MAX between tries (it must stay below the broker's visibility timeout);
    # 20 tries cover about an hour and a half of SMTP outage.
    retry_backoff_max=settings.TASK_RETRY_WAIT_MAX,
    max_retries=20,
)
def send_confirmation_email(user_id: int) -> None:
    from accounts.services import send_confirmation_email as send

    send(user_id=user_id)


@shared_task(name="accounts.tasks.clear_expired_sessions")
def clear_expired_sessions() -> None:
    """Beat, daily (config/beat.py): Django's `clearsessions`. Sessions are written through to the
    database (cached_db), one row per visitor who got a session, and never deleted otherwise."""
    from django.contrib.sessions.backends.db import SessionStore  # noqa: PLC0415 - as the tasks above: no model import at autodiscovery

    SessionStore.clear_expired()
