"""`manage.py sync_whitelabel [--prefix CREATOR] [--dry-run]`: mirror the white-label bucket now."""

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from whitelabel.models import SyncRun
from whitelabel.sync import SyncAlreadyRunning, SyncCounts, SyncDisabled, sync_bucket


class Command(BaseCommand):
    help = "Mirror the white-label bucket into the staging tables (all creators, or one with --prefix)."

    def add_arguments(self, parser):
        parser.add_argument("--prefix", default="", metavar="CREATOR", help="Sync only this creator's folder.")
        parser.add_argument("--dry-run", action="store_true", help="List and compare, write nothing.")

    def handle(self, *args, prefix: str, dry_run: bool, **options):
        verbosity = options["verbosity"]
        last_line = [-1.0]

        def progress(counts: SyncCounts, elapsed: float) -> None:
            # One line a second at most: a 100k-key bucket is 100 pages.
            if verbosity < 1 or (elapsed - last_line[0] < 1.0 and verbosity < 2):
                return
            last_line[0] = elapsed
            rate = counts.keys_listed / elapsed if elapsed else 0.0
            self.stdout.write(
                _("%(pages)d pages, %(keys)d keys listed, %(rows)d rows written, %(rate).0f keys/s")
                % {"pages": counts.pages, "keys": counts.keys_listed, "rows": counts.rows_written, "rate": rate}
            )

        try:
            result = sync_bucket(prefix=prefix, dry_run=dry_run, trigger=SyncRun.Trigger.COMMAND, progress=progress)
        except SyncDisabled as exc:
            # Not an error: an installation without a bucket simply has no white-label content.
            self.stdout.write(self.style.WARNING(str(exc)))
            return
        except SyncAlreadyRunning as exc:
            self.stdout.write(self.style.WARNING(str(exc)))
            return
        except Exception as exc:
            raise CommandError(_("White-label sync failed (nothing was deleted): %(error)s") % {"error": exc}) from exc
        skipped = result.counts.skipped
        if skipped and verbosity >= 1:
            self.stdout.write(
                _("Skipped keys by reason: %(reasons)s")
                % {"reasons": ", ".join(f"{reason}={n}" for reason, n in sorted(skipped.items()))}
            )
        self.stdout.write(self.style.SUCCESS(result.summary()))
