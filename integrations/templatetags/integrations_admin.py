from django import template

from integrations.outbox import failing_endpoints

register = template.Library()


@register.simple_tag
def failing_webhook_endpoints():
    """Endpoints that keep failing, for the admin index (a read)."""
    return list(failing_endpoints())
