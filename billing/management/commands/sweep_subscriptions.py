import time

from django.core.management.base import BaseCommand

from billing.services import sweep_subscriptions


class Command(BaseCommand):
    help = (
        "Issue due renewal charges (and first charges of trials), start grace, expire subscriptions, trials and "
        "stale first checkouts, send checkout reminders "
        "(what beat runs every 5 minutes). Safe to run while another sweep runs."
    )

    def handle(self, *args, **options):
        started = time.monotonic()

        def progress(step, count):
            elapsed = time.monotonic() - started
            self.stdout.write(f"  {step.replace('_', ' ')}: {count} ({elapsed:.2f}s)")

        result = sweep_subscriptions(progress=progress)
        elapsed = time.monotonic() - started
        self.stdout.write(
            self.style.SUCCESS(f"Swept in {elapsed:.2f}s: {result.summary()}; {result.rows_changed} rows changed.")
        )
