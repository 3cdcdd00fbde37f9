from datetime import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from billing.audit import AuditNeedsPostgreSQL, run_audit


class Command(BaseCommand):
    help = (
        "Check the money invariants of contract §9 over the whole database (or the rows changed since --since): "
        "prints each violation with the rows involved and a summary line; exit 1 when there is any. Read-only."
    )

    def add_arguments(self, parser):
        parser.add_argument("--since", help="ISO date or date-time: audit only rows written or changed since then.")

    def handle(self, *args, since=None, **options):
        since_at = _parse_since(since) if since else None
        try:
            report = run_audit(since=since_at)
        except AuditNeedsPostgreSQL as error:
            raise CommandError(f"audit_money needs PostgreSQL (DATABASE_URL): {error}") from error
        for violation in report.violations:
            self.stdout.write(str(violation))
        line = f"{report.summary()}; {report.queries} queries in {report.duration_ms} ms."
        if report.violations:
            self.stdout.write(self.style.ERROR(line))
            raise SystemExit(1)
        self.stdout.write(self.style.SUCCESS(line))


def _parse_since(value: str) -> datetime:
    parsed = parse_datetime(value) or (parse_datetime(f"{value}T00:00:00") if len(value) == 10 else None)
    if parsed is None:
        raise CommandError(f"--since: not an ISO date or date-time: {value!r}")
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed)
