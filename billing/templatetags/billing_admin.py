from django import template

from config.site_health import get_site_health

register = template.Library()


@register.simple_tag
def site_health():
    """The figures the admin index opens with (config.site_health; a read)."""
    return get_site_health()
