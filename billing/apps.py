from django.apps import AppConfig
from django.db.models.signals import post_delete, post_migrate, post_save
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
        from billing.models import OrderBump, PaymentGateway, Plan
        from billing.page_cache import bump_sales_pages_version
        from billing.services.guest_claims import claim_guest_payments_on_confirmation
        from config.beat import ensure_periodic_tasks

        # Accounts is a leaf: a confirmed e-mail reaches billing through its signal.
        email_confirmed.connect(
            claim_guest_payments_on_confirmation, dispatch_uid="billing.claim_guest_payments_on_confirmation"
        )

        # The plans and checkout pages kept for visitors without a subscription show these rows.
        for model in (Plan, OrderBump, PaymentGateway):
            for signal in (post_save, post_delete):
                signal.connect(bump_sales_pages_version, sender=model, dispatch_uid=f"billing.sales_pages.{model.__name__}")

        # Framework hook, not business flow: make beat's schedule exist after migrate.
        post_migrate.connect(ensure_periodic_tasks, sender=self, dispatch_uid="billing.ensure_periodic_tasks")
