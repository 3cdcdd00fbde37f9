"""`/healthz`: is the site able to serve? Checks the database and the cache."""

import logging

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)


def _check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # noqa: BLE001 - any failure means "down"
        logger.warning("healthz: database down", extra={"error": type(exc).__name__})
        return "down"
    return "ok"


def _check_cache() -> str:
    if not settings.REDIS_URL:
        return "n/a"
    try:
        # The cache swallows connection errors (so pages keep serving); a value that
        # does not come back is how an outage shows here.
        cache.set("healthz", "1", timeout=5)
        if cache.get("healthz") != "1":
            return "down"
    except Exception as exc:  # noqa: BLE001 - whatever broke, the health answer is "down"
        logger.warning("healthz: cache down", extra={"error": type(exc).__name__})
        return "down"
    return "ok"


@never_cache
@require_GET
def healthz(request):
    body = {"status": "ok", "database": _check_database(), "cache": _check_cache()}
    if not settings.WHITELABEL_BUCKET:
        body["whitelabel_sync"] = "disabled (WHITELABEL_BUCKET is not set)"
    failing = [name for name in ("database", "cache") if body[name] == "down"]
    if failing:
        body["status"] = "error"
        body["failing"] = failing
        return JsonResponse(body, status=503)
    return JsonResponse(body)
