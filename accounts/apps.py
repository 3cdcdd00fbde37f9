from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = _("Accounts")

    def ready(self):
        from django.contrib import admin

        from accounts.forms import AdminLoginForm

        # The admin's login gets the same failed-login throttling as the site's.
        admin.site.login_form = AdminLoginForm
        admin.site.site_header = _("CreatorFlix back office")
        admin.site.site_title = _("CreatorFlix back office")
        admin.site.index_title = _("Plans, payments, subscriptions and content")
