from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WhitelabelConfig(AppConfig):
    name = "whitelabel"
    verbose_name = _("White-label staging")
