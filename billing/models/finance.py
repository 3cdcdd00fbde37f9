"""The finance dashboard's place in the admin index (a proxy, no table)."""

from django.utils.translation import gettext_lazy as _

from billing.models.checkouts import Checkout


class FinanceDashboard(Checkout):
    """No table of its own: gives the finance dashboard its place in the admin index."""

    class Meta:
        proxy = True
        verbose_name = _("finance dashboard")
        verbose_name_plural = _("finance dashboard")
        default_permissions = ()
