from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = _("Billing")

    def ready(self):
        # Imported here: wiring (signals, checks, hooks) once every app is loaded.
        from accounts.signals import email_confirmed
        from billing import (
            checks,  # noqa: F401 - registers billing.E001
            notifications,  # noqa: F401 - registers its Celery tasks with the worker
        )
        from billing.services.guest_claims import claim_guest_payments_on_confirmation
        from config.beat import ensure_periodic_tasks

        # Accounts is a leaf: a confirmed e-mail reaches billing through its signal.
        email_confirmed.connect(
            claim_guest_payments_on_confirmation, dispatch_uid="billing.claim_guest_payments_on_confirmation"
        )

        # Framework hook, not business flow: make beat's schedule exist after migrate.
        post_migrate.connect(ensure_periodic_tasks, sender=self, dispatch_uid="billing.ensure_periodic_tasks")
