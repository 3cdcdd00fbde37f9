from django import template

from billing.ledger_models import MoneyAuditRun

register = template.Library()


@register.simple_tag
def last_money_audit():
    """The money audit's last run, for the admin index (a read); None before the first."""
    return MoneyAuditRun.objects.order_by("-started_at").first()
