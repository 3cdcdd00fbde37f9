"""`manage.py configure_webhook_endpoint URL [--events a,b]` (contract §6): creates or updates the endpoint, prints its secret."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import URLValidator

from integrations.models import EVENT_TYPES, WebhookEndpoint


class Command(BaseCommand):
    help = "Add (or update the events of) an outbound webhook endpoint and print its signing secret."

    def add_arguments(self, parser):
        parser.add_argument("url")
        parser.add_argument("--events", default="", help="Comma-separated event types; default every event.")

    def handle(self, *args, url, events, **options):
        try:
            URLValidator(schemes=["http", "https"])(url)
        except ValidationError as exc:
            raise CommandError(f"Not a URL: {url}") from exc
        wanted = [e.strip() for e in events.split(",") if e.strip()]
        unknown = sorted(set(wanted) - set(EVENT_TYPES))
        if unknown:
            raise CommandError(f"Unknown event types: {', '.join(unknown)}. Known: {', '.join(EVENT_TYPES)}")
        endpoint = WebhookEndpoint.objects.filter(url=url).order_by("pk").first()
        if endpoint is None:
            endpoint = WebhookEndpoint.objects.create(url=url, events=wanted)
        else:
            endpoint.events, endpoint.is_active = wanted, True
            endpoint.save(update_fields=["events", "is_active"])
        self.stdout.write(f"endpoint {endpoint.pk}: {url} ({', '.join(wanted) or 'all events'})")
        self.stdout.write(endpoint.secret)
