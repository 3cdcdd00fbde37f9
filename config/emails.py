"""
Transactional e-mails (contract §3): the plain text every e-mail already had,
and the same words in the site's one HTML layout (templates/email/layout.html:
the brand, the text with its links clickable, the seller's name and document),
rendered in the language active at the call (the recipient's: callers wrap it
in translation.override). An e-mail with richer HTML of its own (the receipt)
passes it as `html`, shown inside the same layout. The plain-text part ends
with the same seller footer (templates/email/footer.txt).

`tag` and `metadata` reach an e-mail service's dashboard and webhooks when
EMAIL_BACKEND is one of django-anymail's (docs/operations.md); other backends
ignore them. Neither may carry personal data: a kind of e-mail, an id.
"""

from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils.translation import get_language

from config.seller import get_seller


def transactional_email(
    *, subject: str, body: str, to: list[str], html: str = "", headers: dict | None = None, tag: str = "", metadata: dict | None = None
) -> EmailMultiAlternatives:
    seller = get_seller()
    footer = render_to_string("email/footer.txt", {"seller": seller}).strip()
    text = f"{body.rstrip()}\n\n-- \n{footer}\n" if footer else body
    message = EmailMultiAlternatives(subject=str(subject), body=text, to=to, headers=headers)
    layout = render_to_string(
        "email/layout.html",
        {"subject": subject, "body": body, "html": html, "seller": seller, "LANGUAGE_CODE": get_language()},
    )
    message.attach_alternative(layout, "text/html")
    if tag:
        message.tags = [tag]
    if metadata:
        message.metadata = metadata
    return message
