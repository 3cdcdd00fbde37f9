"""Celery's autodiscovery finds accounts' tasks here; the e-mail tasks live next to their code (accounts/emails.py)."""

from celery import shared_task

from accounts.emails import send_confirmation_email_task, send_set_password_email_task

__all__ = ["clear_expired_sessions", "send_confirmation_email_task", "send_set_password_email_task"]


@shared_task(name="accounts.tasks.clear_expired_sessions")
def clear_expired_sessions() -> None:
    """Beat, daily (config/beat.py): Django's `clearsessions`. Sessions are written through to the
    database (cached_db), one row per visitor who got a session, and never deleted otherwise."""
    from django.contrib.sessions.backends.db import (
        SessionStore,  # imports the Session model: only when run, not when Celery loads this module
    )

    SessionStore.clear_expired()
