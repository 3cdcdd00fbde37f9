from datetime import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from billing.models import Coupon
from billing.services import create_coupon
from config.errors import DomainError


def _parse_ends(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"--ends: not an ISO date or date-time: {value!r}") from exc
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment)


class Command(BaseCommand):
    help = "Create a coupon (contract §6): CODE (--percent N | --amount CENTS) [--plans 1,2] [--max-uses N] [--ends ISO] [--new-only]."

    def add_arguments(self, parser):
        parser.add_argument("code")
        kind = parser.add_mutually_exclusive_group(required=True)
        kind.add_argument("--percent", type=int, help="percent off the plan line, 1 to 100")
        kind.add_argument("--amount", type=int, help="cents of BRL off the plan line")
        parser.add_argument("--plans", default="", help="comma-separated plan ids (default: every plan)")
        parser.add_argument("--max-uses", type=int, default=None)
        parser.add_argument("--ends", default=None, help="ISO date or date-time when it stops working")
        parser.add_argument("--new-only", action="store_true", help="only for who never had a paid subscription")
        parser.add_argument("--renewals", type=int, default=0, help="renewals also discounted (0: first payment only; -1: every renewal)")

    def handle(self, *args, **options):
        try:
            plan_ids = [int(part) for part in options["plans"].split(",") if part.strip()]
        except ValueError as exc:
            raise CommandError("--plans: comma-separated plan ids") from exc
        kind, value = (Coupon.Kind.PERCENT, options["percent"]) if options["percent"] is not None else (Coupon.Kind.AMOUNT, options["amount"])
        try:
            coupon = create_coupon(
                code=options["code"],
                kind=kind,
                value=value,
                plan_ids=plan_ids,
                max_uses=options["max_uses"],
                ends_at=_parse_ends(options["ends"]) if options["ends"] else None,
                new_subscribers_only=options["new_only"],
                renewals=None if options["renewals"] < 0 else options["renewals"],
            )
        except DomainError as exc:
            raise CommandError(f"{exc.message} ({', '.join(exc.fields) or exc.code})") from exc
        plans = ", ".join(str(p.pk) for p in coupon.plans.all()) or "all"
        self.stdout.write(
            f"{coupon.code}: {coupon.value_display} off, plans {plans}, max uses {coupon.max_uses or 'unlimited'}, "
            f"ends {coupon.ends_at.isoformat() if coupon.ends_at else 'never'}, new subscribers only {coupon.new_subscribers_only}"
        )
