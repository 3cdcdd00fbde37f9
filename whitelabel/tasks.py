"""Celery's autodiscovery finds the white-label sync task here; it is defined next to the sync (whitelabel.sync)."""

from whitelabel.sync import sync_bucket_task as sync_bucket

__all__ = ["sync_bucket"]
