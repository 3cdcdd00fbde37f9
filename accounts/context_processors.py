from django.conf import settings
from django.utils.functional import SimpleLazyObject


def access(request):
    """`has_access` for templates, computed only if a template asks (one query)."""
    user = getattr(request, "user", None)
    return {
        "has_access": SimpleLazyObject(lambda: bool(user is not None and user.is_authenticated and user.has_access)),
        "MIN_AGE": settings.MIN_AGE,
    }
