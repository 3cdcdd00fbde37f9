from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = _("Accounts")

    def ready(self):
        # Imported here: wiring (signals, checks, hooks) once every app is loaded.
        from django.contrib import admin
        from django.contrib.auth.signals import user_logged_in
        from django_celery_beat.admin import PeriodicTaskAdmin

        from accounts import checks  # noqa: F401 - registers accounts.E002
        from accounts.forms import AdminLoginForm
        from accounts.language import remember_language_at_login

        # The admin's login gets the same failed-login throttling as the site's.
        admin.site.login_form = AdminLoginForm
        admin.site.site_header = _("CreatorFlix back office")
        admin.site.site_title = _("CreatorFlix back office")
        admin.site.index_title = _("Plans, payments, subscriptions and content")
        # No app list beside every page: the breadcrumbs and the index lead there, and lists keep
        # their width for the columns an operator scans (a checkout's total and status at 1366 px).
        admin.site.enable_nav_sidebar = False
        # django-celery-beat's one admin label outside gettext (its other strings are in
        # locale/third_party): without this it reads "Crontab translation" in pt-BR too.
        PeriodicTaskAdmin.crontab_translation.short_description = _("Schedule in words")
        # A framework hook, not business flow: a choice made with the switch before
        # signing up or logging in (the language cookie) is kept on the account.
        user_logged_in.connect(remember_language_at_login, dispatch_uid="accounts.remember_language")
