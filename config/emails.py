"""
Transactional e-mails (contract §3): the plain text every e-mail already had,
and the same words in the site's one HTML layout (templates/email/layout.html:
the brand, the text with its links clickable, the seller's name and document),
rendered in the language active at the call (the recipient's: callers wrap it
in translation.override). An e-mail with richer HTML of its own (the receipt)
passes it as `html`, shown inside the same layout.
"""

from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils.translation import get_language

from config.seller import get_seller


def transactional_email(*, subject: str, body: str, to: list[str], html: str = "", headers: dict | None = None) -> EmailMultiAlternatives:
    message = EmailMultiAlternatives(subject=str(subject), body=body, to=to, headers=headers)
    layout = render_to_string(
        "email/layout.html",
        {"subject": subject, "body": body, "html": html, "seller": get_seller(), "LANGUAGE_CODE": get_language()},
    )
    message.attach_alternative(layout, "text/html")
    return message
