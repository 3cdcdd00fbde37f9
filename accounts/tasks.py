from smtplib import SMTPException

from celery import shared_task


@shared_task(
    name="accounts.tasks.send_set_password_email",
    autoretry_for=(SMTPException, OSError),
    retry_backoff=30,
    retry_backoff_max=30 * 60,
    max_retries=8,
)
def send_set_password_email(user_id: int) -> None:
    from accounts.services import send_set_password_email as send

    send(user_id=user_id)


@shared_task(
    name="accounts.tasks.send_confirmation_email",
    autoretry_for=(SMTPException, OSError),
    retry_backoff=30,
    retry_backoff_max=30 * 60,
    max_retries=8,
)
def send_confirmation_email(user_id: int) -> None:
    from accounts.services import send_confirmation_email as send

    send(user_id=user_id)
