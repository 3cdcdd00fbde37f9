"""
Masking the customer's personal data (CPF, phone, e-mail) for display and for
the copies we keep of provider payloads.

A masked value is enough to recognise a customer ("***.***.***-25",
"a***@example.com"), never to reuse their data. The full values live only in
encrypted columns (`Checkout.customer_document`, `Checkout.gateway_response`,
`WebhookEvent.body`).
"""

from __future__ import annotations

import hashlib
import hmac
import re

from django.conf import settings

from billing.documents import digits_only, is_valid_cpf

# Keys of provider payloads (JunglePay, Dias, the sandbox) that hold personal
# data, compared lower-case without "_" or "-".
EMAIL_KEYS = frozenset({"email", "mail", "emailaddress", "payeremail", "customeremail", "buyeremail"})
PHONE_KEYS = frozenset({"phone", "phonenumber", "cellphone", "mobile", "mobilephone", "telephone", "whatsapp"})
DOCUMENT_KEYS = frozenset({"document", "documentnumber", "cpf", "cnpj", "taxid", "doc"})

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_CPF = re.compile(r"(?<!\d)\d{3}\.?\d{3}\.?\d{3}-?\d{2}(?!\d)")
# A phone written with DDD, maybe +55, spaces, dots, dashes or brackets: 10 to 13 digits.
_PHONE = re.compile(r"(?<![\w+])(?:\+?55[\s.-]?)?\(?\d{2}\)?[\s.-]?\d{4,5}[\s.-]?\d{4}(?!\w)")


def document_digest(document: str | None) -> str:
    """
    A keyed hash of a CPF's digits, to find earlier purchases by CPF without
    decrypting every row ("new subscribers only", one trial per CPF). Empty
    for an empty document. Keyed by SECRET_KEY: it cannot be reversed by
    hashing the 10^9 possible CPFs without it.
    """
    digits = digits_only(document)
    if not digits:
        return ""
    key = hashlib.sha256(("cpf-digest:" + settings.SECRET_KEY).encode()).digest()
    return hmac.new(key, digits.encode(), hashlib.sha256).hexdigest()


def mask_cpf(document: str | None) -> str:
    """'12345678909' → '***.***.***-09': enough to recognise, not to reuse."""
    digits = digits_only(document)
    if not digits:
        return ""
    return "***.***.***-" + digits[-2:].rjust(2, "*")


def mask_phone(phone: str | None) -> str:
    """'11987654321' → '*********21'."""
    digits = digits_only(phone)
    if not digits:
        return ""
    return "*" * max(len(digits) - 2, 0) + digits[-2:]


def mask_email(email: str | None) -> str:
    """'ana@example.com' → 'a***@example.com'."""
    if not email:
        return ""
    local, at, domain = str(email).partition("@")
    if not at:
        return "***"
    return (local[:1] or "*") + "***@" + domain


def _key(name) -> str:
    return str(name).lower().replace("_", "").replace("-", "")


def _mask_scalar(value, masker):
    if value is None or value == "":
        return value
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return masker(str(value))
    return mask_personal_data(value)


def _mask_document(value):
    if isinstance(value, dict):
        # JunglePay: {"number": "52998224725", "type": "cpf"}
        return {
            key: _mask_scalar(item, mask_cpf) if _key(key) in ("number", "value") else mask_personal_data(item)
            for key, item in value.items()
        }
    return _mask_scalar(value, mask_cpf)


def mask_personal_data(value):
    """
    A copy of a parsed payload with every CPF, phone and e-mail masked: by key
    (`customer.document.number`, `payer.email`, `phone`, ...) and, as a safety
    net, any string that is an e-mail or a valid CPF on its own.
    """
    if isinstance(value, dict):
        masked = {}
        for key, item in value.items():
            name = _key(key)
            if name in EMAIL_KEYS:
                masked[key] = _mask_scalar(item, mask_email)
            elif name in PHONE_KEYS:
                masked[key] = _mask_scalar(item, mask_phone)
            elif name in DOCUMENT_KEYS:
                masked[key] = _mask_document(item)
            else:
                masked[key] = mask_personal_data(item)
        return masked
    if isinstance(value, list):
        return [mask_personal_data(item) for item in value]
    if isinstance(value, str):
        if _EMAIL.fullmatch(value):
            return mask_email(value)
        if _CPF.fullmatch(value) and is_valid_cpf(value):
            return mask_cpf(value)
    return value


def mask_personal_text(text: str | None) -> str:
    """Free text (a body that is not JSON) with anything shaped like an e-mail, a CPF or a phone masked."""
    if not text:
        return text or ""
    text = _EMAIL.sub(lambda m: mask_email(m.group(0)), text)
    text = _CPF.sub(lambda m: mask_cpf(m.group(0)), text)
    return _PHONE.sub(lambda m: mask_phone(m.group(0)), text)


# ---------------------------------------------------------------------------
# Erasure (LGPD art. 18: deletion): not masked, gone
# ---------------------------------------------------------------------------

ERASED = "[erased]"
NAME_KEYS = frozenset({"name", "fullname", "firstname", "lastname", "payername", "customername", "buyername"})


def erase_personal_data(value, *, known: tuple[str, ...] = ()):
    """
    A copy of a parsed payload with every personal value replaced by ERASED:
    by key (e-mail, phone, document and name keys, as for masking) and, as a
    safety net, any occurrence of the `known` values (the person's e-mail,
    name, CPF, phone) anywhere in a string. Amounts, dates, statuses and ids stay.
    """
    if isinstance(value, dict):
        erased = {}
        for key, item in value.items():
            name = _key(key)
            if name in EMAIL_KEYS | PHONE_KEYS | DOCUMENT_KEYS | NAME_KEYS and item not in (None, ""):
                erased[key] = ERASED if not isinstance(item, (dict, list)) else _erase_all(item)
            else:
                erased[key] = erase_personal_data(item, known=known)
        return erased
    if isinstance(value, list):
        return [erase_personal_data(item, known=known) for item in value]
    if isinstance(value, str):
        if _EMAIL.fullmatch(value) or (_CPF.fullmatch(value) and is_valid_cpf(value)):
            return ERASED
        return _erase_known(value, known)
    return value


def _erase_known(text: str, known: tuple[str, ...]) -> str:
    for value in sorted({v for v in known if v and len(v) >= 3}, key=len, reverse=True):
        text = re.sub(re.escape(value), ERASED, text, flags=re.IGNORECASE)
    return text


def _erase_all(value):
    """Every scalar of a personal sub-object (`document: {number, type}`) erased, the shape kept."""
    if isinstance(value, dict):
        return {key: _erase_all(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_erase_all(item) for item in value]
    return ERASED if value not in (None, "") else value


def erase_personal_text(text: str | None, *, known: tuple[str, ...] = ()) -> str:
    """Free text with the `known` values and anything shaped like an e-mail, a CPF or a phone erased."""
    if not text:
        return text or ""
    text = _erase_known(text, known)
    text = _EMAIL.sub(ERASED, text)
    text = _CPF.sub(ERASED, text)
    return _PHONE.sub(ERASED, text)
