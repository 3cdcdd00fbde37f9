"""
How the finance console shows values to people: statuses as coloured labels, short ids,
phones and dates formatted, items as a table, payloads masked, card attempts in words.
The badge and table styles are in static/admin/console.css.
"""

import json

from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext

from billing.documents import digits_only
from billing.models import CardAttempt
from billing.money import format_brl
from billing.personal_data import mask_personal_data


def masked_json(value):
    """A provider payload for people to read: CPFs, phones and e-mails masked (billing.personal_data)."""
    if value in (None, {}, []):
        return "—"
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



# Badge tones by status value, shared by every list that shows a status: green is done and
# good, amber waits for something, red needs a person, grey is over.
_TONES = {
    "success": {"paid", "active", "processed", "succeeded", "delivered", "charged", "trialing"},
    "warning": {"pending", "past_due", "received", "running", "in_flight", "processing", "unconfirmed"},
    "error": {"failed", "refused", "error", "abandoned"},
}


def status_badge(value: str, label) -> str:
    """A status as a coloured label ("Pago" in green); the tone comes from the stored value."""
    tone = next((tone for tone, values in _TONES.items() if value in values), "muted")
    return format_html('<span class="badge badge-{}">{}</span>', tone, label)


def short_id(value, *, url: str | None = None) -> str:
    """The first 8 characters of an id, monospace, the whole id in the tooltip (and a link when given)."""
    if not value:
        return "—"
    text = str(value)
    if url:
        return format_html('<a href="{}" class="short-id" title="{}">{}</a>', url, text, text[:8])
    return format_html('<code class="short-id" title="{}">{}</code>', text, text[:8])


def format_phone(phone: str | None) -> str:
    """'11912345678' → '(11) 91234-5678', '1132345678' → '(11) 3234-5678'; anything else as stored."""
    digits = digits_only(phone)
    if len(digits) in (12, 13) and digits.startswith("55"):
        digits = digits[2:]
    if len(digits) not in (10, 11):
        return phone or "—"
    return f"({digits[:2]}) {digits[2:-4]}-{digits[-4:]}"


def short_datetime(value) -> str:
    """'04/12/2026 10:10' in the site's time zone: one line in a list column."""
    return timezone.localtime(value).strftime("%d/%m/%Y %H:%M") if value else "—"


def items_table(items: list[dict]) -> str:
    """A checkout's lines (title, quantity, unit price) as a small table, with their total."""
    if not items:
        return "—"
    rows = format_html_join(
        "",
        '<tr><td>{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td></tr>',
        (
            (
                item.get("title", ""),
                item.get("quantity", 1),
                format_brl(item.get("unit_price_cents", 0)),
                format_brl(item.get("unit_price_cents", 0) * item.get("quantity", 1)),
            )
            for item in items
        ),
    )
    return format_html(
        '<table class="items"><thead><tr><th scope="col">{}</th><th scope="col">{}</th><th scope="col">{}</th>'
        '<th scope="col">{}</th></tr></thead><tbody>{}</tbody></table>',
        gettext("Item"), gettext("Quantity"), gettext("Unit price"), gettext("Subtotal"), rows,
    )


def tracking_text(tracking: dict | None) -> str:
    """First and last touch as two lines of `key value`, not JSON."""
    touches = [(gettext("First touch"), (tracking or {}).get("first")), (gettext("Last touch"), (tracking or {}).get("last"))]
    lines = [(label, " · ".join(f"{key} {value}" for key, value in touch.items())) for label, touch in touches if touch]
    return format_html_join(mark_safe("<br>"), "<strong>{}</strong>: {}", lines) or "—"


def benefits_text(benefits: list[dict]) -> str:
    """A plan's benefits as the sales page reads them: titles and subtitles, no icon names."""
    lines = [" — ".join(part for part in (b.get("title", ""), b.get("subtitle", "")) if part) for b in benefits or []]
    return " · ".join(line for line in lines if line) or "—"
