"""
Publish white-label staging creators into the catalog (contract §6).

    manage.py publish_whitelabel --all
    manage.py publish_whitelabel --creator "Ana Júlia" [--creator other]

Idempotent: running it again with nothing new in staging writes nothing.
"""

import time

from django.core.management.base import BaseCommand, CommandError

from catalog.services.publishing import PublishError, publish_whitelabel


class Command(BaseCommand):
    help = "Publish white-label staging creators into the catalog (idempotent)."

    def add_arguments(self, parser):
        group = parser.add_mutually_exclusive_group(required=True)
        group.add_argument("--all", action="store_true", help="Every staging creator not marked hidden.")
        group.add_argument(
            "--creator", action="append", metavar="NAME", help="Folder name or slug; repeat for several."
        )

    def handle(self, *args, all=False, creator=None, **options):
        started = time.monotonic()
        try:
            result = publish_whitelabel(
                folder_names=creator, publish_all=all, progress=lambda message: self.stdout.write(f"  {message}")
            )
        except PublishError as exc:
            raise CommandError(str(exc)) from exc
        elapsed = time.monotonic() - started
        rows = result.posts_created + result.media_created + result.media_updated + result.posts_updated
        rate = rows / elapsed if elapsed else 0
        self.stdout.write(
            self.style.SUCCESS(f"Published {result.summary()} in {elapsed:.1f}s ({rate:.0f} rows/s).")
        )
