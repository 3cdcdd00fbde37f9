from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LegalConfig(AppConfig):
    name = "legal"
    verbose_name = _("Privacy and consumer rights")

    def ready(self):
        from legal import checks  # noqa: F401 - registers the system checks
