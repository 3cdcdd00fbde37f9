"""How the finance console shows values to people: payloads masked, card attempts in words."""

import json

from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from billing.models import CardAttempt
from billing.personal_data import mask_personal_data


def masked_json(value):
    """A provider payload for people to read: CPFs, phones and e-mails masked (billing.personal_data)."""
    return format_html("<pre>{}</pre>", json.dumps(mask_personal_data(value), indent=2, ensure_ascii=False))


def card_attempts_html(attempts):
    """Each card attempt for people: when, amount, installments, card, result and the bank's reason."""
    rows = list(attempts.order_by("-created_at", "-pk")[:30])
    if not rows:
        return "—"
    return format_html_join(
        mark_safe("<br>"),
        "{} · {} · {}× · {} · <strong>{}</strong>{}",
        (
            (
                timezone.localtime(a.created_at).strftime("%d/%m/%Y %H:%M"),
                a.amount_display,
                a.installments,
                f"{a.card_brand.title()} •••• {a.card_last_digits}" if a.card_last_digits else "—",
                a.get_status_display(),
                f" · {a.refusal_reason} ({a.refusal_code})" if a.status == CardAttempt.Status.REFUSED else "",
            )
            for a in rows
        ),
    )

