"""
Configure a payment gateway (contract §6):

    manage.py configure_gateway junglepay --secret-key K [--public-key P] [--activate]
    manage.py configure_gateway sandbox --activate
    manage.py configure_gateway dias --activate

Keys are stored encrypted. `--activate` on junglepay or sandbox makes it the
one gateway of our own checkout (the other is deactivated in the same
transaction); on dias it enables the marketplace webhook and leaves the
internal gateway alone. Prints the postback URL, token included, to paste
into the provider; `--rotate-token` issues a new token first.
"""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from billing.gateways.sandbox import sandbox_allowed
from billing.models import PaymentGateway


class Command(BaseCommand):
    help = "Set a payment gateway's keys (stored encrypted), optionally activate it, and print its postback URL."

    def add_arguments(self, parser):
        parser.add_argument("kind", choices=PaymentGateway.Kind.values)
        parser.add_argument("--secret-key", default=None, help="The provider's secret key (stored encrypted).")
        parser.add_argument("--public-key", default=None)
        parser.add_argument("--activate", action="store_true", help="Make it the active gateway (dias: enable its webhook).")
        parser.add_argument("--rotate-token", action="store_true", help="Issue a new postback token (the old URL stops working).")

    @transaction.atomic
    def handle(self, *args, kind, secret_key, public_key, activate, rotate_token, **options):
        if kind == PaymentGateway.Kind.SANDBOX and activate and not sandbox_allowed():
            raise CommandError("The sandbox fakes payments: set DEBUG=true or SANDBOX_GATEWAY_ALLOWED=true to activate it.")
        config, created = PaymentGateway.objects.select_for_update().get_or_create(kind=kind)
        changed = []
        if secret_key is not None:
            config.secret_key = secret_key.strip()
            changed.append("secret key")
        if public_key is not None:
            config.public_key = public_key.strip()
            changed.append("public key")
        if kind == PaymentGateway.Kind.JUNGLEPAY and not config.effective_secret_key:
            raise CommandError("JunglePay needs --secret-key (or JUNGLEPAY_SECRET_KEY in the environment).")
        if rotate_token:
            config.rotate_postback_token()
            changed.append("postback token")
        if activate and not config.is_active:
            if config.is_internal:
                # One active internal gateway, enforced by a unique constraint: switch off the other first.
                PaymentGateway.objects.filter(is_active=True, kind__in=PaymentGateway.INTERNAL_KINDS).exclude(pk=config.pk).update(
                    is_active=False
                )
            config.is_active = True
            changed.append("activated")
        config.save()

        self.stdout.write(f"{config.get_kind_display()}: {'created' if created else 'updated'}")
        if config.secret_key or config.effective_secret_key:
            self.stdout.write(f"  secret key: {config.masked_secret}")
        self.stdout.write(f"  active: {'yes' if config.is_active else 'no'}")
        self.stdout.write("  postback URL (paste it into the provider):")
        self.stdout.write(f"  {config.postback_url}")
        self.stdout.write(
            self.style.SUCCESS(f"configure_gateway {kind}: done ({', '.join(changed) if changed else 'nothing changed'}).")
        )
