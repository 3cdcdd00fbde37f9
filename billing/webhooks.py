"""
Payment webhooks: verify → store → process (contract §3).

1. The body size is checked (413 above WEBHOOK_MAX_BODY_BYTES) and the
   per-gateway token of the postback URL is verified. A bad or missing token
   gets 401 and leaves nothing but a log line.
2. The raw request is stored as a WebhookEvent, in its own transaction,
   before anything else happens. Deliveries are deduplicated by the database
   (unique provider + event id), never by a check-then-insert. A body that is
   not JSON is stored too, and answered 400.
3. The event is processed in its own transaction(s), by the billing services.
   For JunglePay (and the sandbox, which mimics it) we act on the charge as
   fetched from the gateway, never on the body: a forged or stale body cannot
   move money. The outcome and any error are recorded on the event, so the
   admin can replay it and `retry_failed_webhooks` retries it with backoff.

Every stored event is answered 200, even when it is ignored.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import traceback
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from billing.gateways import ChargeStatus, GatewayError, NotificationInvalid, gateway_for
from billing.gateways.sandbox import sandbox_allowed
from billing.models import Checkout, PaymentGateway, WebhookEvent

logger = logging.getLogger(__name__)

Outcome = WebhookEvent.Outcome
# Request headers worth keeping with the event; cookies and credentials never are.
KEPT_HEADERS = ("content-type", "content-length", "user-agent", "x-forwarded-for", "x-real-ip", "x-request-id", "x-sandbox-simulation")
# Backoff of the retry task: attempt n waits 2**n minutes; after MAX_ATTEMPTS a person decides.
MAX_ATTEMPTS = 8


@dataclass(frozen=True)
class WebhookResponse:
    status_code: int
    body: dict


class ProcessingError(Exception):
    """A stored event that could not be applied; kept FAILED with this message, for replay."""


# ---------------------------------------------------------------------------
# Receiving
# ---------------------------------------------------------------------------


def _authenticate(provider: str, token: str) -> PaymentGateway | None:
    config = PaymentGateway.objects.filter(kind=provider).first()
    if config is None or not token or not secrets.compare_digest(token.encode(), config.postback_token.encode()):
        return None
    if provider == PaymentGateway.Kind.DIAS and not config.is_active:
        return None  # `configure_gateway dias --activate` enables this webhook
    if provider == PaymentGateway.Kind.SANDBOX and not sandbox_allowed():
        return None  # fake payments are never accepted where the sandbox is not allowed
    return config


def authenticate(*, provider: str, token: str) -> PaymentGateway | None:
    """The gateway a request with this token authenticates as, or None (the webhook throttle spares the former)."""
    return _authenticate(provider, token)


def _store(*, provider: str, event_id: str, headers: dict, body: str, payload) -> tuple[WebhookEvent, bool]:
    event_id = _without_nul(event_id)
    try:
        with transaction.atomic():
            event = WebhookEvent.objects.create(
                provider=provider, event_id=event_id, headers=headers, body=body, payload=payload
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

    config = authenticated or _authenticate(provider, token)
    if config is None:
        logger.warning("webhook refused: bad or missing token", extra={"provider": provider})
        return WebhookResponse(401, {"error": {"code": "invalid_token", "message": "Invalid or missing token.", "fields": {}}})

    kept = {k.lower(): str(v)[:500] for k, v in (headers or {}).items() if k.lower() in KEPT_HEADERS}
    # PostgreSQL text and jsonb cannot hold NUL; anything else is kept as received.
    text = body.decode("utf-8", errors="replace").replace("\x00", "\ufffd")
    gateway = gateway_for(config)
    try:
        notification = gateway.parse_notification(body)
        payload = _without_nul(json.loads(body))
    except (NotificationInvalid, ValueError, UnicodeDecodeError) as exc:
        event, _created = _store(
            provider=provider, event_id="sha256:" + hashlib.sha256(body).hexdigest(), headers=kept, body=text, payload=None
        )
        WebhookEvent.objects.filter(pk=event.pk).update(outcome=Outcome.IGNORED, error=str(exc)[:1000], processed_at=timezone.now())
        logger.warning("webhook stored but unparseable", extra={"provider": provider, "event": event.pk})
        return WebhookResponse(400, {"error": {"code": "malformed_body", "message": "Malformed JSON body.", "fields": {}}})

    event, created = _store(provider=provider, event_id=notification.event_id, headers=kept, body=text, payload=payload)
    if not created and event.outcome != Outcome.FAILED:
        # A re-delivery: stored once, applied once. A FAILED one is retried by the redelivery.
        return WebhookResponse(200, {"status": "duplicate", "event_id": event.event_id})
    outcome = process_event(event=event)
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


def process_event(*, event: WebhookEvent, now=None) -> str:
    """
    Apply a stored event and record its outcome; never raises (an error is
    kept on the event for replay).

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
        apply = _prepare(event)
        with transaction.atomic():
            # Registered first, so it runs first after COMMIT: it tells us the commit happened.
            transaction.on_commit(lambda: committed.append(True))
            outcome, note, checkout = apply(now)
            _record_outcome(event, outcome=outcome, note=note, checkout=checkout, now=now)
    except Exception as exc:  # noqa: BLE001 - whatever failed, the event keeps it for replay
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
    WebhookEvent.objects.filter(pk=event.pk).update(
        outcome=outcome,
        error=_without_nul(note)[:4000],
        processed_at=now,
        attempts=F("attempts") + 1,
        checkout=checkout or event.checkout,
    )


def _prepare(event: WebhookEvent):
    """Parse the stored body and ask the gateway (network, no transaction); return the step that applies it."""
    config = PaymentGateway.objects.get(kind=event.provider)
    gateway = gateway_for(config)
    notification = gateway.parse_notification(event.body.encode("utf-8"))
    if notification.kind != "transaction":
        return lambda now: (Outcome.IGNORED, f"event type {notification.kind!r} is not acted upon", None)
    if event.provider == PaymentGateway.Kind.DIAS:
        return lambda now: _process_marketplace(notification, now=now)
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


def checkout_for_charge(config: PaymentGateway, charge) -> Checkout | None:
    """
    Our checkout for a gateway's charge: by `externalRef` (our uuid), else by
    transaction id. A checkout whose charge lives at another gateway is never
    matched: one gateway's notification cannot move another gateway's money.
    """
    qs = Checkout.objects.select_related("plan")
    found = None
    if charge.external_ref:
        try:
            found = qs.filter(public_id=uuid.UUID(charge.external_ref)).first()
        except ValueError:
            found = None
    if found is None:
        found = qs.filter(gateway=config, gateway_transaction_id=charge.transaction_id).first()
    if found is not None and found.gateway_id not in (None, config.pk):
        logger.warning("charge refers to a checkout of another gateway", extra={"gateway": config.kind, "transaction": charge.transaction_id})
        return None
    return found


def apply_charge(*, checkout: Checkout, charge, now) -> tuple[str, str]:
    """
    Move a checkout to what the gateway says, through the billing services
    (each locks the checkout and is idempotent). Never backwards: a
    `waiting_payment` never un-pays a paid checkout, a `paid` never revives a
    refunded one.
    """
    from billing import services

    stale = charge.status == ChargeStatus.PENDING and checkout.status != Checkout.Status.PENDING
    if charge.provider_status and charge.provider_status != checkout.gateway_status and not stale:
        # Informational (the state machine below is what counts); a stale "waiting" never overwrites.
        Checkout.objects.filter(pk=checkout.pk).update(gateway_status=charge.provider_status[:40])

    Status = Checkout.Status
    if charge.status == ChargeStatus.PAID:
        if checkout.status == Status.PAID:
            return Outcome.IGNORED, "already paid"
        if checkout.status == Status.REFUNDED:
            return Outcome.IGNORED, "checkout was refunded; a person must look at this payment"
        if charge.amount_cents is not None and charge.amount_cents != checkout.total_cents:
            raise ProcessingError(f"amount paid {charge.amount_cents} differs from the checkout total {checkout.total_cents}")
        # Money is never ignored: a payment after expiry or failure still activates (flagged late).
        services.activate_checkout(checkout=checkout, paid_at=charge.paid_at or now, now=now)
        return Outcome.PROCESSED, ""
    if charge.status == ChargeStatus.PENDING:
        return Outcome.IGNORED, f"status {charge.provider_status!r}: nothing to do"
    if charge.status in (ChargeStatus.FAILED, ChargeStatus.CANCELED, ChargeStatus.EXPIRED):
        if checkout.status != Status.PENDING:
            return Outcome.IGNORED, f"status {charge.provider_status!r} for a {checkout.status} checkout"
        target = {ChargeStatus.FAILED: Status.FAILED, ChargeStatus.CANCELED: Status.CANCELED, ChargeStatus.EXPIRED: Status.EXPIRED}
        services.fail_checkout(checkout=checkout, status=target[charge.status], now=now)
        return Outcome.PROCESSED, ""
    if charge.status == ChargeStatus.REFUNDED:
        if checkout.status != Status.PAID:
            return Outcome.IGNORED, f"status {charge.provider_status!r} for a {checkout.status} checkout"
        services.refund_checkout(checkout=checkout, now=now)
        return Outcome.PROCESSED, ""
    return Outcome.IGNORED, f"unknown status {charge.provider_status!r}"


def _process_marketplace(notification, *, now) -> tuple[str, str, None]:
    from billing.marketplace import record_marketplace_payment

    if notification.status not in (ChargeStatus.PENDING, ChargeStatus.PAID):
        return Outcome.IGNORED, f"unknown status {notification.provider_status!r}", None
    if not notification.transaction_id or not notification.payer_email:
        # Nothing a retry could fix: kept for a person, not retried.
        return Outcome.IGNORED, "no transaction id or no payer e-mail in the body", None
    record_marketplace_payment(
        external_id=notification.transaction_id,
        status=notification.status,
        amount_cents=notification.amount_cents,
        email=notification.payer_email,
        name=notification.payer_name,
        now=now,
    )
    return Outcome.PROCESSED, "", None


# ---------------------------------------------------------------------------
# Replay and retry
# ---------------------------------------------------------------------------


def replay_event(*, event: WebhookEvent, now=None) -> str:
    """The admin's replay: process a stored event again (safe: every step is idempotent)."""
    return process_event(event=event, now=now)


def retry_failed_events(*, now=None, limit: int = 200) -> dict:
    """
    Retry FAILED events whose backoff has passed (attempt n waits 2**n
    minutes, up to MAX_ATTEMPTS), and RECEIVED ones stuck for 10 minutes (a
    worker died mid-way). Each event is claimed by compare-and-set on its
    `processed_at`, so two runs never process the same event at once.
    """
    now = now or timezone.now()
    counts = {"retried": 0, "processed": 0, "failed": 0, "skipped": 0}
    candidates = WebhookEvent.objects.filter(
        outcome__in=[Outcome.FAILED, Outcome.RECEIVED], attempts__lt=MAX_ATTEMPTS, received_at__lte=now - timedelta(minutes=1)
    ).order_by("received_at")[:limit]
    for event in candidates:
        last = event.processed_at or event.received_at
        wait = timedelta(minutes=2 ** max(event.attempts, 0)) if event.outcome == Outcome.FAILED else timedelta(minutes=10)
        if last + wait > now:
            counts["skipped"] += 1
            continue
        claimed = WebhookEvent.objects.filter(pk=event.pk, outcome=event.outcome, processed_at=event.processed_at).update(
            processed_at=now
        )
        if not claimed:
            counts["skipped"] += 1
            continue
        counts["retried"] += 1
        outcome = process_event(event=event, now=now)
        counts["failed" if outcome == Outcome.FAILED else "processed"] += 1
    return counts
