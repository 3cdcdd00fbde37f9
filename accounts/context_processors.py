from django.conf import settings


def age(request):
    """The minimum age, for the templates that say it (billing.context_processors.access gives `has_access`)."""
    return {"MIN_AGE": settings.MIN_AGE}
