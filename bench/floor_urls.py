"""
URLs for the benchmarks only: the project's URLs plus the framework's floors.
`bench/floor` is a bare Django view returning the same 20 rows as
`/api/models` with JsonResponse (bench/api.py); `bench/bare` is a bare
`JsonResponse` touching nothing (bench/launch.py). Enabled by
`DJANGO_SETTINGS_MODULE=bench.settings`, never by the project's own settings.
"""

from django.http import JsonResponse
from django.urls import path

from catalog.models import Creator
from config.urls import handler404, handler500  # noqa: F401
from config.urls import urlpatterns as project_urlpatterns


def floor(request):
    rows = list(
        Creator.objects.filter(status=Creator.Status.PUBLISHED)
        .order_by("-post_count", "name", "id")
        .values("name", "slug", "source_icon_url", "source_banner_url", "source_thumbnail_url", "post_count")[:20]
    )
    return JsonResponse({"count": len(rows), "results": rows})


def bare(request):
    return JsonResponse({"checkout_id": "00000000-0000-0000-0000-000000000000", "status": "pending", "total_amount": 2990, "paid_at": None, "subscription": None})


urlpatterns = [path("bench/floor", floor), path("bench/bare", bare), *project_urlpatterns]
