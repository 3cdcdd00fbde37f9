"""System checks of the legal pages."""

from django.conf import settings
from django.core.checks import Warning, register


@register("legal", deploy=False)
def legal_pages_published(app_configs=None, databases=None, **kwargs):
    """
    legal.W001: every footer and the checkout link to /terms/ and /privacy/; with DEBUG off both must be
    published. It reads the database, so it runs only when databases are named (`migrate`,
    `check --database default`), like billing.E001.
    """
    if settings.DEBUG or not databases:
        return []
    from legal.models import LegalDocument
    from legal.selectors import current_document

    try:
        missing = [label for kind, label in LegalDocument.Kind.choices if current_document(kind=kind) is None]
    except Exception:  # noqa: BLE001 - no database yet (before migrate), or none allowed here (a test worker)
        return []
    if not missing:
        return []
    return [
        Warning(
            f"Not published yet: {', '.join(str(label) for label in missing)}.",
            hint="Write and publish them in the admin (Legal pages); footers and the checkout link to them.",
            obj="legal.LegalDocument",
            id="legal.W001",
        )
    ]
