"""The one retry policy of billing's e-mail tasks."""

from django.conf import settings

# Every e-mail task retries an SMTP failure the same way: waits below the broker's visibility timeout
# (config/settings.py, TASK_RETRY_WAIT_MAX); 7 tries cover about 25 minutes.
EMAIL_RETRY = {"autoretry_for": (OSError,), "retry_backoff": 60, "retry_backoff_max": settings.TASK_RETRY_WAIT_MAX, "max_retries": 7}
