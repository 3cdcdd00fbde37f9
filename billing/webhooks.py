"""
Payment webhooks: verify → store → process (contract §3).

1. The body size is checked (413 above WEBHOOK_MAX_BODY_BYTES) and the
   per-gateway token of the postback URL is verified. A bad or missing token
   gets 401 and leaves nothing but a log line.
2. The raw request is stored as a WebhookEvent, in its own transaction,
   before anything else happens (the body encrypted, the parsed payload with
   personal data masked). Deliveries are deduplicated by the database
   (unique provider + event id), never by a check-then-insert. A body that is
   not JSON is stored too, and answered 400.
3. The event is processed in its own transaction(s), by the billing services.
   For JunglePay (and the sandbox, which mimics it) we act on the charge as
   fetched from the gateway, never on the body: a forged or stale body cannot
   move money. The outcome and any error are recorded on the event, so the
   admin can replay it and `retry_failed_webhooks` retries it with backoff.
4. Whoever processes an event holds a lease on it (`next_attempt_at`, taken
   by compare-and-set): the first delivery from the moment it stores it, a
   re-delivery or the retry task by claiming it. A lease outlives every
   live processing (the gateway budget plus a margin), so once it has run
   out the processor is dead: a re-delivery of that event, or the retry task
   (every 15 s), processes it again. Processing is idempotent, so an event
   whose worker was killed is applied exactly once, within a minute.

Every stored event is answered 200, even when it is ignored.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import traceback
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from billing.gateways import Gateway, GatewayError, Notification, NotificationInvalid, gateway_for
from billing.gateways.base import gateway_budget
from billing.gateways.sandbox import sandbox_allowed
from billing.models import PaymentGateway, WebhookEvent
from billing.personal_data import mask_personal_data
from billing.services.payments import ProcessingError, apply_charge, apply_marketplace_notification, checkout_for_charge

logger = logging.getLogger(__name__)

Outcome = WebhookEvent.Outcome
# Request headers worth keeping with the event; cookies and credentials never are.
KEPT_HEADERS = ("content-type", "content-length", "user-agent", "x-forwarded-for", "x-real-ip", "x-request-id", "x-sandbox-simulation")
# Backoff of the retry task: attempt n waits 2**n minutes; after MAX_ATTEMPTS a person decides.
MAX_ATTEMPTS = 8
# Seconds added to the gateway budget for an event's processing lease: its database work.
LEASE_MARGIN_SECONDS = 10


def processing_lease() -> timedelta:
    """
    How long whoever processes an event holds it. Processing makes its gateway calls within
    one budget (GATEWAY_REQUEST_BUDGET_SECONDS), so a RECEIVED event whose lease ran out
    lost its worker: a re-delivery or the retry task takes it.
    """
    return timedelta(seconds=settings.GATEWAY_REQUEST_BUDGET_SECONDS + LEASE_MARGIN_SECONDS)


@dataclass(frozen=True)
class WebhookResponse:
    status_code: int
    body: dict


# ---------------------------------------------------------------------------
# Receiving
# ---------------------------------------------------------------------------


def authenticate(*, provider: str, token: str) -> PaymentGateway | None:
    config = PaymentGateway.objects.filter(kind=provider).first()
    if config is None or not token:
        return None
    # Every accepted token is compared (no early exit), in constant time each.
    matches = [secrets.compare_digest(token.encode(), accepted.encode()) for accepted in config.accepted_postback_tokens(now=timezone.now())]
    if not any(matches):
        return None
    if provider == PaymentGateway.Kind.DIAS and not config.is_active:
        return None  # `configure_gateway dias --activate` enables this webhook
    if provider == PaymentGateway.Kind.SANDBOX and not sandbox_allowed():
        return None  # fake payments are never accepted where the sandbox is not allowed
    return config


def store_event(*, provider: str, event_id: str, headers: dict, body: str, payload, now=None) -> tuple[WebhookEvent, bool]:
    """
    Stored once, before anything acts on it: (the event, whether this call created it).
    The body is kept encrypted (the field does it); the parsed payload is kept with the
    customer's CPF, phone and e-mail masked, for people to read.
    """
    event_id = _without_nul(event_id)
    received_at = now or timezone.now()
    try:
        with transaction.atomic():
            event = WebhookEvent.objects.create(
                provider=provider, event_id=event_id, headers=headers, body=body, payload=mask_personal_data(payload),
                received_at=received_at, next_attempt_at=received_at + processing_lease(),
            )
        return event, True
    except IntegrityError:
        # The unique (provider, event_id) constraint: this delivery was seen before.
        return WebhookEvent.objects.get(provider=provider, event_id=event_id), False


def receive_webhook(
    *,
    provider: str,
    token: str,
    body: bytes,
    headers: dict | None = None,
    content_length: int | None = None,
    authenticated: PaymentGateway | None = None,
) -> WebhookResponse:
    """
    The whole webhook door, shared by the HTTP view and the sandbox's simulate button.
    `authenticated`: the gateway `authenticate()` already returned for this token (saves the query).
    """
    limit = settings.WEBHOOK_MAX_BODY_BYTES
    if (content_length is not None and content_length > limit) or len(body) > limit:
        logger.warning("webhook refused: body too large", extra={"provider": provider, "size": content_length or len(body)})
        return WebhookResponse(413, {"error": {"code": "payload_too_large", "message": "Body too large.", "fields": {}}})

    config = authenticated or authenticate(provider=provider, token=token)
    if config is None:
        logger.warning("webhook refused: bad or missing token", extra={"provider": provider})
        return WebhookResponse(401, {"error": {"code": "invalid_token", "message": "Invalid or missing token.", "fields": {}}})

    kept = {k.lower(): str(v)[:500] for k, v in (headers or {}).items() if k.lower() in KEPT_HEADERS}
    # PostgreSQL text and jsonb cannot hold NUL; anything else is kept as received.
    text = body.decode("utf-8", errors="replace").replace("\x00", "\ufffd")
    gateway = gateway_for(config)
    try:
        # Parsed once: the Notification carries the JSON it was read from, and is handed to processing.
        notification = gateway.parse_notification(body)
    except (NotificationInvalid, ValueError, UnicodeDecodeError) as exc:
        event, _created = store_event(
            provider=provider, event_id="sha256:" + hashlib.sha256(body).hexdigest(), headers=kept, body=text, payload=None
        )
        WebhookEvent.objects.filter(pk=event.pk).update(
            outcome=Outcome.IGNORED, error=str(exc)[:1000], processed_at=timezone.now(), next_attempt_at=None
        )
        logger.warning("webhook stored but unparseable", extra={"provider": provider, "event": event.pk})
        return WebhookResponse(400, {"error": {"code": "malformed_body", "message": "Malformed JSON body.", "fields": {}}})

    event, created = store_event(
        provider=provider, event_id=notification.event_id, headers=kept, body=text, payload=_without_nul(notification.payload)
    )
    if not created and not claim_event(event, now=timezone.now(), redelivery=True):
        # A re-delivery of an event done, or being processed right now: stored once, applied once.
        return WebhookResponse(200, {"status": "duplicate", "event_id": event.event_id})
    outcome = process_event(event=event, notification=notification, gateway=gateway)
    return WebhookResponse(200, {"status": outcome, "event_id": event.event_id})


def _without_nul(value):
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, list):
        return [_without_nul(item) for item in value]
    if isinstance(value, dict):
        return {_without_nul(key): _without_nul(item) for key, item in value.items()}
    return value


# ---------------------------------------------------------------------------
# Processing
# ---------------------------------------------------------------------------


def process_event(*, event: WebhookEvent, notification: Notification | None = None, gateway: Gateway | None = None, now=None) -> str:
    """
    Apply a stored event and record its outcome; never raises (an error is
    kept on the event for replay).

    The live path passes the `notification` it parsed from the request and
    the `gateway` it authenticated it for; a retry or a replay has only the
    stored body, which is parsed here, and the event's provider.

    The gateway is asked first, outside any transaction (no row is locked
    while we wait on the network). Then the state change and the event's
    outcome commit together in one transaction: an event is PROCESSED exactly
    when its change is in the database. A side effect that fails after the
    commit (an e-mail) is logged and does not turn a done event into FAILED.
    """
    now = now or timezone.now()
    committed: list[bool] = []
    outcome = Outcome.FAILED
    try:
        # The fetch fits the lease (processing_lease); inside a request, the request's budget is the tighter one.
        with gateway_budget():
            apply = _prepare(event, notification, gateway)
        with transaction.atomic():
            # Registered first, so it runs first after COMMIT: it tells us the commit happened.
            transaction.on_commit(lambda: committed.append(True))
            outcome, note, checkout = apply(now)
            _record_outcome(event, outcome=outcome, note=note, checkout=checkout, now=now)
    except Exception as exc:  # whatever failed, the event keeps it for replay
        if committed:
            logger.exception("side effect after a processed webhook failed", extra={"provider": event.provider, "event": event.pk})
            return str(outcome)
        detail = str(exc) or type(exc).__name__
        if isinstance(exc, (ProcessingError, GatewayError)):
            logger.warning("webhook processing failed", extra={"provider": event.provider, "event": event.pk, "error": detail})
        else:
            logger.exception("webhook processing failed", extra={"provider": event.provider, "event": event.pk})
            detail = f"{type(exc).__name__}: {detail}\n" + "".join(traceback.format_exception(exc, limit=-3))
        _record_outcome(event, outcome=Outcome.FAILED, note=detail, checkout=None, now=now)
        return str(Outcome.FAILED)
    return str(outcome)


def _record_outcome(event: WebhookEvent, *, outcome: str, note: str, checkout, now) -> None:
    next_attempt_at = None
    if outcome == Outcome.FAILED:
        # Backoff: after its n-th failed attempt an event waits 2**n minutes.
        next_attempt_at = now + retry_backoff(event.attempts + 1)
    WebhookEvent.objects.filter(pk=event.pk).update(
        outcome=outcome,
        error=_without_nul(note)[:4000],
        processed_at=now,
        attempts=F("attempts") + 1,
        next_attempt_at=next_attempt_at,
        checkout=checkout or event.checkout,
    )


def retry_backoff(attempts: int) -> timedelta:
    return timedelta(minutes=2 ** max(attempts, 0))


def _prepare(event: WebhookEvent, notification: Notification | None, gateway: Gateway | None):
    """Ask the gateway (network, no transaction); return the step that applies the event."""
    gateway = gateway or gateway_for(PaymentGateway.objects.get(kind=event.provider))
    config = gateway.config
    if notification is None:
        # A retry or a replay: the stored body is all there is.
        notification = gateway.parse_notification(event.body.encode("utf-8"))
    if notification.kind != "transaction":
        return lambda now: (Outcome.IGNORED, f"event type {notification.kind!r} is not acted upon", None)
    if event.provider == PaymentGateway.Kind.DIAS:
        return lambda now: (*apply_marketplace_notification(notification, now=now), None)
    if not notification.transaction_id:
        return lambda now: (Outcome.IGNORED, "no transaction id in the body", None)

    # Act on the gateway's answer, not on the body (which anybody with the URL could write).
    charge = gateway.fetch_charge(notification.transaction_id)

    def apply(now):
        checkout = checkout_for_charge(config, charge)
        if checkout is None:
            return Outcome.IGNORED, f"no checkout for transaction {charge.transaction_id}", None
        outcome, note = apply_charge(checkout=checkout, charge=charge, now=now)
        return outcome, note, checkout

    return apply


# ---------------------------------------------------------------------------
# Replay and retry
# ---------------------------------------------------------------------------


def claim_event(event: WebhookEvent, *, now, redelivery: bool = False) -> bool:
    """
    Take the lease on a stored event, by compare-and-set on what was read: of
    two claimants only one wins. Claimable: a RECEIVED event whose lease ran
    out (its worker died), a FAILED one that is due (or any FAILED one, for a
    re-delivery). The claimed event is RECEIVED again with a fresh lease, so if
    this worker dies too, the next claimant takes it once the lease runs out.
    """
    if event.outcome == Outcome.RECEIVED:
        if event.next_attempt_at is not None and event.next_attempt_at > now:
            return False  # leased: being processed right now
    elif event.outcome != Outcome.FAILED:
        return False  # processed or ignored: done
    elif not redelivery and (event.next_attempt_at is None or event.next_attempt_at > now):
        return False
    claimed = WebhookEvent.objects.filter(pk=event.pk, outcome=event.outcome, next_attempt_at=event.next_attempt_at).update(
        outcome=Outcome.RECEIVED, next_attempt_at=now + processing_lease()
    )
    return claimed == 1


def retry_failed_events(*, now=None, limit: int = 200) -> dict:
    """
    Retry the events that are due: FAILED ones whose backoff has passed
    (attempt n waits 2**n minutes, up to MAX_ATTEMPTS) and RECEIVED ones
    whose processing lease ran out (a worker died mid-way). What is due is
    selected by the query (`next_attempt_at`), so events still waiting never
    crowd out a due one. Each event is claimed (`claim_event`), so two runs
    never process the same event at once.
    """
    now = now or timezone.now()
    counts = {"retried": 0, "processed": 0, "failed": 0, "skipped": 0}
    due = WebhookEvent.objects.filter(
        outcome__in=[Outcome.FAILED, Outcome.RECEIVED], attempts__lt=MAX_ATTEMPTS, next_attempt_at__lte=now
    ).order_by("next_attempt_at", "pk")[:limit]
    for event in due:
        if not claim_event(event, now=now):
            counts["skipped"] += 1
            continue
        counts["retried"] += 1
        outcome = process_event(event=event, now=now)
        counts["failed" if outcome == Outcome.FAILED else "processed"] += 1
    return counts
