"""What every finance action does with a service: call it per row, log, report counts."""

from django.contrib import messages
from django.utils.translation import gettext, ngettext

from config.errors import DomainError


def run_service(modeladmin, request, queryset, service, message, **kwargs):
    """Calls `service` per row, logs each change in the admin history and reports counts."""
    done, failed = 0, []
    for obj in queryset:
        try:
            changed = service(**{modeladmin.service_arg: obj}, **kwargs)
        except DomainError as exc:
            failed.append(f"#{obj.pk}: {exc.message}")
            continue
        modeladmin.log_change(request, changed, message)
        done += 1
    if done:
        modeladmin.message_user(
            request, ngettext("%(count)d row updated.", "%(count)d rows updated.", done) % {"count": done}, messages.SUCCESS
        )
    if failed:
        modeladmin.message_user(request, gettext("Not changed: %(list)s") % {"list": "; ".join(failed)}, messages.ERROR)
