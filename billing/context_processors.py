from django.utils.functional import SimpleLazyObject

from billing.access import user_has_access


def access(request):
    """`has_access` for templates, computed only if a template asks (one query)."""
    user = getattr(request, "user", None)
    return {"has_access": SimpleLazyObject(lambda: user_has_access(user))}
