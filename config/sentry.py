"""
Error reporting to Sentry (`SENTRY_DSN`, contract §2), off when the DSN is unset.

Nothing personal leaves the site: the SDK's own default sends no user, client
address or cookies (`send_default_pii` stays unset), request bodies are never sent, and every event and
transaction passes `scrub_event` before it is sent, which walks the whole event
and masks what a buyer typed or a gateway holds wherever it hides: values under
personal or secret keys (CPF, e-mail, phone, card, token, Authorization,
cookies), and inside any string a CPF, an e-mail address, a phone number, a
card number, a bearer credential or a `token=` query parameter (the postback
URL's). Frames' local variables and source lines are not sent at all.
"""

import re
from importlib import metadata

import sentry_sdk
from sentry_sdk.integrations.celery import CeleryIntegration
from sentry_sdk.integrations.django import DjangoIntegration

FILTERED = "[Filtered]"

# Keys whose value is personal or secret, whatever it looks like (lower-cased, "-" read as "_").
_SENSITIVE_KEYS = re.compile(
    r"(?i)(cpf|document|e_?mail|phone|card|cvv|cvc|hash|token|secret|password|passwd|authorization|"
    r"cookie|session|csrf|api_?key|access_key|signature|x_forwarded_for|remote_addr|ip_address)"
)

# A URL's query parameter (or a key=value pair): masked when its name is personal or secret
# (the postback URL's `?token=`, `email=`, a presigned URL's signature).
_PARAMETER = re.compile(r"(?i)((?:^|[?&;\s])([A-Za-z0-9_.-]+)=)([^&\s'\"#]+)")

# Inside any string. Order matters: bearer credentials before bare digits.
_STRING_PATTERNS = [
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9+/=._~-]+"), r"\1 " + FILTERED),
    (re.compile(r"(?i)[A-Za-z0-9._%+-]+(?:@|%40)[A-Za-z0-9.-]+\.[A-Za-z]{2,}"), FILTERED),
    # A card number: 13 to 19 digits, possibly grouped by spaces or dashes.
    (re.compile(r"\b(?:\d[ -]?){12,18}\d\b"), FILTERED),
    # A CPF, formatted or bare.
    (re.compile(r"\b\d{3}\.?\d{3}\.?\d{3}-?\d{2}\b"), FILTERED),
    # A Brazilian phone: optional +55, area code, 8 or 9 digits.
    (re.compile(r"(?:\+?55\s?)?\(?\b\d{2}\)?\s?9?\d{4}[-\s]?\d{4}\b"), FILTERED),
]


def _mask_parameter(match: re.Match) -> str:
    if _SENSITIVE_KEYS.search(match.group(2).replace("-", "_")) or match.group(2).lower().startswith("x-amz-"):
        return match.group(1) + FILTERED
    return match.group(0)


def scrub_string(text: str) -> str:
    text = _PARAMETER.sub(_mask_parameter, text)
    for pattern, replacement in _STRING_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _scrub(value, key: str = ""):
    if key and _SENSITIVE_KEYS.search(key.replace("-", "_")):
        return FILTERED if value not in (None, "", [], {}) else value
    if isinstance(value, str):
        return scrub_string(value)
    if isinstance(value, dict):
        return {k: _scrub(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        # Headers arrive as [name, value] pairs in some events.
        if len(value) == 2 and isinstance(value[0], str) and _SENSITIVE_KEYS.search(value[0].replace("-", "_")):
            return [value[0], FILTERED]
        return [_scrub(item) for item in value]
    return value


def scrub_event(event: dict, hint: dict | None = None) -> dict:
    """Sentry's `before_send`/`before_send_transaction`: mask personal data and secrets everywhere; no user at all."""
    return {key: _scrub_exception(value) if key == "exception" else _scrub(value) for key, value in event.items() if key != "user"}


_FRAME_DATA = {"vars", "pre_context", "context_line", "post_context"}


def _scrub_exception(exception: dict) -> dict:
    """Exception values are messages (scrubbed); frames are code (file, function, line: kept), with
    neither variables nor source lines (which the SDK is told not to send in the first place)."""
    values = []
    for item in exception.get("values", []):
        item = dict(item)
        if isinstance(item.get("value"), str):
            item["value"] = scrub_string(item["value"])
        stacktrace = item.get("stacktrace")
        if stacktrace:
            frames = [{k: v for k, v in frame.items() if k not in _FRAME_DATA} for frame in stacktrace.get("frames", [])]
            item["stacktrace"] = {**stacktrace, "frames": frames}
        values.append(item)
    return {**exception, "values": values}


def default_release() -> str:
    try:
        return f"creatorflix@{metadata.version('creatorflix')}"
    except metadata.PackageNotFoundError:
        return "creatorflix@unknown"


def init_sentry(*, dsn: str, environment: str, release: str, traces_sample_rate: float, transport=None) -> None:
    """Start the SDK for this process (web or worker); `transport` lets a test catch events without a network."""
    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        release=release,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        traces_sample_rate=traces_sample_rate,
        include_local_variables=False,
        include_source_context=False,
        max_request_body_size="never",
        before_send=scrub_event,
        before_send_transaction=scrub_event,
        transport=transport,
    )
