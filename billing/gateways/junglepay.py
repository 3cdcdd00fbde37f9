"""
JunglePay (REST, JSON; see docs/payments.md and shared junglepay-api.md).

Rules this client keeps:
- A create is never retried blindly. There is no idempotency key, so after a
  timeout, a 5xx or an unreadable answer the charge may exist anyway: we look
  it up by `externalRef` (our checkout uuid) and only report a failure when
  it is not there. The caller (billing.services.charges) records every
  attempt before the call, so the next attempt looks first as well.
- Every call's timeouts are clipped to the running gateway budget
  (base.call_timeouts): inside a web request all calls end within
  GATEWAY_REQUEST_BUDGET_SECONDS.
- GETs are idempotent and are retried with backoff: by urllib3 (Retry)
  outside a budget, by `_get_within_budget` inside one (it stops when the
  budget is spent).
- Repeated failures open a circuit breaker: callers get `gateway_unavailable`
  at once for a short while instead of waiting for timeouts; after the
  cooldown one probe call decides whether it closes (breaker.py).
- Errors become `GatewayUnavailable` / `GatewayRejected` with the provider's
  message only when it is a short plain sentence.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterable
from datetime import datetime
from datetime import time as dtime
from zoneinfo import ZoneInfo

import requests
from django.conf import settings
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from billing.exceptions import GatewayError, GatewayRejected, GatewayUnavailable, PaymentDetailsRefused
from billing.gateways.base import (
    CONNECT_TIMEOUT,
    READ_TIMEOUT,
    BudgetExhausted,
    Card,
    CardChargeRequest,
    Charge,
    ChargeRequest,
    ChargeStatus,
    CreateUnconfirmed,
    Gateway,
    Notification,
    Refusal,
    call_timeouts,
    in_budget,
    json_object,
)
from billing.gateways.breaker import CircuitBreaker

logger = logging.getLogger(__name__)

STATUS_MAP = {
    "waiting_payment": ChargeStatus.PENDING,
    "processing": ChargeStatus.PENDING,
    "authorized": ChargeStatus.PENDING,
    # Part of the money arrived: not paid; recorded and listed for a person.
    "partially_paid": ChargeStatus.PARTIALLY_PAID,
    "paid": ChargeStatus.PAID,
    "refused": ChargeStatus.FAILED,
    "canceled": ChargeStatus.CANCELED,
    "refunded": ChargeStatus.REFUNDED,
    "chargedback": ChargeStatus.REFUNDED,
    "in_protest": ChargeStatus.REFUNDED,  # a PIX dispute (MED): access revoked at once
    # Not a JunglePay status: the sandbox uses it to try the expiry path.
    "expired": ChargeStatus.EXPIRED,
}

# Pages of `list_charges` read before it stops and says so.
LIST_MAX_PAGES = 50
# Tries of a GET inside a gateway budget (connection errors, 5xx, 429), as long as the budget lasts.
BUDGET_GET_ATTEMPTS = 3
SAO_PAULO = ZoneInfo("America/Sao_Paulo")
_SAFE_MESSAGE_MAX = 200


def normalize_status(provider_status: str) -> ChargeStatus:
    return STATUS_MAP.get((provider_status or "").strip().lower(), ChargeStatus.UNKNOWN)


def _as_int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _as_datetime(value) -> datetime | None:
    if not value or not isinstance(value, str):
        return None
    value = value.strip()
    if len(value) == 10:
        # A bare day (a PIX "expirationDate"): the charge is payable through its
        # last instant in Brazil. Checked before parse_datetime, which reads
        # "2026-12-02" as that day's 00:00 and would expire the charge that morning.
        day = parse_date(value)
        return datetime.combine(day, dtime.max, tzinfo=SAO_PAULO) if day is not None else None
    parsed = parse_datetime(value)
    if parsed is not None:
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=SAO_PAULO)
        return parsed
    day = parse_date(value[:10])
    if day is not None:
        return datetime.combine(day, dtime.max, tzinfo=SAO_PAULO)
    return None


def charge_from_transaction(data: dict) -> Charge:
    """A JunglePay transaction object (also the sandbox's) → Charge. Tolerant of extra fields."""
    if not isinstance(data, dict) or data.get("id") in (None, ""):
        raise ValueError("transaction without an id")
    pix = data.get("pix") if isinstance(data.get("pix"), dict) else {}
    provider_status = str(data.get("status") or "")
    method = str(data.get("paymentMethod") or "pix")
    return Charge(
        transaction_id=str(data["id"]),
        status=normalize_status(provider_status),
        provider_status=provider_status,
        amount_cents=_as_int(data.get("amount")),
        external_ref=str(data.get("externalRef") or data.get("external_ref") or ""),
        pix_code=str(pix.get("qrcode") or ""),
        pix_url=str(pix.get("url") or data.get("secureUrl") or ""),
        expires_at=_as_datetime(pix.get("expirationDate")),
        paid_at=_as_datetime(data.get("paidAt")),
        created_at=_as_datetime(data.get("createdAt")),
        raw=data,
        paid_amount_cents=_as_int(data.get("paidAmount")),
        payment_method="card" if method in ("credit_card", "card") else method,
        card=_card(data.get("card")),
        refusal=_refusal(data.get("refusedReason")) if provider_status == "refused" else None,
        installments=_as_int(data.get("installments")),
    )


def _card(data) -> Card | None:
    """The transaction's card object: only what identifies it for display and a later charge."""
    if not isinstance(data, dict):
        return None
    last = "".join(ch for ch in str(data.get("lastDigits") or "") if ch.isdigit())[-4:]
    return Card(
        card_id=str(data.get("id") or "")[:100],
        brand=str(data.get("brand") or "")[:20].lower(),
        last_digits=last,
        exp_month=_as_int(data.get("expirationMonth")),
        exp_year=_as_int(data.get("expirationYear")),
        reusable=data.get("reusable") is True,
    )


def _refusal(data) -> Refusal:
    if isinstance(data, dict):
        return Refusal(code=str(data.get("code") or "")[:40], message=" ".join(str(data.get("message") or "").split())[:255])
    if isinstance(data, str):
        return Refusal(message=" ".join(data.split())[:255])
    return Refusal()


def parse_transaction_postback(body: bytes) -> Notification:
    """`{"id", "type", "objectId", "url", "data": {transaction}}` → Notification."""
    payload = json_object(body)
    data = payload.get("data") if isinstance(payload.get("data"), dict) else {}
    postback_id = payload.get("id")
    event_id = str(postback_id) if postback_id not in (None, "") else "sha256:" + hashlib.sha256(body).hexdigest()
    kind = str(payload.get("type") or "")
    transaction_id = data.get("id") if data.get("id") not in (None, "") else payload.get("objectId")
    provider_status = str(data.get("status") or "")
    return Notification(
        event_id=event_id[:128],
        kind=kind,
        transaction_id=str(transaction_id or ""),
        external_ref=str(data.get("externalRef") or ""),
        provider_status=provider_status,
        status=normalize_status(provider_status),
        amount_cents=_as_int(data.get("amount")),
        payload=payload,
    )


def _safe_message(response: requests.Response) -> str:
    """The provider's own words, when they are a short plain sentence; else nothing."""
    try:
        body = response.json()
    except ValueError:
        return ""
    message = ""
    if isinstance(body, dict):
        message = body.get("message") or body.get("error") or ""
        if isinstance(message, dict):
            message = message.get("message") or ""
    if not isinstance(message, str):
        return ""
    message = " ".join(message.split())
    if not message or len(message) > _SAFE_MESSAGE_MAX or "<" in message:
        return ""
    return message


class JunglePayGateway(Gateway):
    kind = "junglepay"

    def __init__(self, config, *, session: requests.Session | None = None):
        super().__init__(config)
        self.base_url = settings.JUNGLEPAY_API_URL
        self.breaker = CircuitBreaker("junglepay")
        self.session = session or self._build_session()
        # Inside a gateway budget (a web request), and for the lookup after an ambiguous
        # create, a GET gets one attempt: urllib3's retries would not fit the budget.
        self.single_attempt_session = session or self._build_session(retries=False)

    def _build_session(self, *, retries: bool = True) -> requests.Session:
        session = requests.Session()
        secret = self.config.effective_secret_key
        # Basic base64("<secret>:x"), as JunglePay documents.
        session.auth = (secret, "x")
        session.headers.update({"Accept": "application/json", "User-Agent": "CreatorFlix/1.0"})
        retry = Retry(
            total=3,
            connect=2,
            read=2,
            status=2,
            backoff_factor=0.3,
            status_forcelist=(429, 500, 502, 503, 504),
            # Only idempotent reads are retried; a POST is never replayed by the adapter
            # (urllib3 still retries connect errors, which never reached the server).
            allowed_methods=frozenset({"GET"}),
            raise_on_status=False,
            respect_retry_after_header=False,
        )
        if not retries:
            retry = Retry(total=0, connect=0, read=0, status=0, redirect=0, raise_on_status=False)
        session.mount("https://", HTTPAdapter(max_retries=retry))
        session.mount("http://", HTTPAdapter(max_retries=retry))
        return session

    # -- plumbing ---------------------------------------------------------

    def _url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def _guard(self) -> tuple[float, float]:
        """The call's (connect, read) timeouts, once it may go to the provider (keys set, budget left, breaker)."""
        if not self.config.effective_secret_key:
            raise GatewayUnavailable(_("The payment provider is not configured."))
        # Before the breaker: a call the budget refuses must not take the half-open probe.
        timeouts = call_timeouts(CONNECT_TIMEOUT, READ_TIMEOUT)
        if not self.breaker.allow():
            raise GatewayUnavailable(_("The payment provider is unavailable right now. Please try again in a minute."))
        return timeouts

    def _unavailable(self, reason: str) -> GatewayUnavailable:
        self.breaker.record_failure()
        logger.warning("junglepay unavailable", extra={"reason": reason})
        return GatewayUnavailable(_("The payment provider is unavailable right now. Please try again in a minute."))

    def _rejected(self, response: requests.Response) -> GatewayRejected:
        # The provider answered: a probe of the half-open breaker is over, without a verdict on health.
        self.breaker.release_probe()
        message = _safe_message(response)
        secret = self.config.effective_secret_key
        if secret and secret in message:
            message = ""  # never echo a key back, whatever the provider says
        logger.warning("junglepay rejected the request", extra={"status": response.status_code, "provider_message": message})
        if response.status_code in (400, 422):
            # The provider refused what the buyer typed (document, phone...): say so.
            return PaymentDetailsRefused(message or _("The payment provider refused the payment details."))
        # 401/403/404...: our configuration, not the buyer's fault; their words are not for buyers.
        return GatewayRejected(_("The payment provider refused the request."))

    def _get_json(
        self, path: str, *, params: dict | None = None, counts_as_health: bool = True, retried: bool = True
    ) -> dict | list:
        timeouts = self._guard()
        if retried and not in_budget():
            response = self._get(self.session, path, params=params, timeouts=timeouts)  # urllib3 retries
        else:
            response = self._get_within_budget(path, params=params, timeouts=timeouts, attempts=BUDGET_GET_ATTEMPTS if retried else 1)
        if response.status_code >= 400:
            raise self._rejected(response)
        try:
            body = response.json()
        except ValueError as exc:
            raise self._unavailable("non-JSON body") from exc
        if counts_as_health:
            self.breaker.record_success()
        return body

    def _get(self, session: requests.Session, path: str, *, params, timeouts) -> requests.Response:
        """One GET (and urllib3's retries, on the retrying session); a 5xx/429 or no answer → GatewayUnavailable."""
        try:
            response = session.get(self._url(path), params=params, timeout=timeouts)
        except requests.RequestException as exc:
            raise self._unavailable(type(exc).__name__) from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise self._unavailable(f"HTTP {response.status_code}")
        return response

    def _get_within_budget(self, path: str, *, params, timeouts, attempts: int) -> requests.Response:
        """
        urllib3's retries know no deadline: inside a budget the GET is retried here instead
        (connection errors, 5xx, 429), each try's timeouts clipped to what is left, and only
        the last failure counts against the breaker.
        """
        for attempt in range(1, attempts + 1):
            try:
                response = self.single_attempt_session.get(self._url(path), params=params, timeout=timeouts)
            except requests.RequestException as exc:
                failure, cause = type(exc).__name__, exc
            else:
                if response.status_code < 500 and response.status_code != 429:
                    return response
                failure, cause = f"HTTP {response.status_code}", None
            if attempt == attempts:
                break
            time.sleep(0.3 * attempt)
            try:
                timeouts = call_timeouts(CONNECT_TIMEOUT, READ_TIMEOUT)
            except BudgetExhausted:
                break
        raise self._unavailable(failure) from cause

    # -- the interface ----------------------------------------------------

    def create_charge(self, request: ChargeRequest) -> Charge:
        timeouts = self._guard()
        body = {
            "amount": request.amount_cents,
            "paymentMethod": "pix",
            **_buyer_and_items(request),
            "pix": {"expiresInDays": request.expires_in_days},
            "postbackUrl": request.postback_url,
            "externalRef": request.external_ref,
            "metadata": request.metadata,
        }
        try:
            # Inside a budget not even urllib3's connect retries: they would multiply the wait.
            session = self.single_attempt_session if in_budget() else self.session
            response = session.post(self._url("transactions"), json=body, timeout=timeouts)
        except requests.RequestException as exc:
            # A read timeout or a reset after sending: the charge may well exist.
            return self._after_ambiguous_create(request, reason=type(exc).__name__)

        if response.status_code >= 500 or response.status_code == 429:
            return self._after_ambiguous_create(request, reason=f"HTTP {response.status_code}")
        if response.status_code >= 400:
            raise self._rejected(response)
        try:
            charge = charge_from_transaction(response.json())
        except ValueError:
            return self._after_ambiguous_create(request, reason="unreadable answer to create")
        self.breaker.record_success()
        return self._usable(charge)

    def create_card_charge(self, request: CardChargeRequest) -> Charge:
        """
        One card charge (`card: {hash}` from the browser, or `card: {id}` of a
        saved card). A refusal is an answer, not an error: the Charge comes
        back FAILED with its `refusal`. An ambiguous answer is looked up by
        externalRef, never posted again (CreateUnconfirmed when not found).
        """
        timeouts = self._guard()
        body = {
            "amount": request.amount_cents,
            "paymentMethod": "credit_card",
            "installments": request.installments,
            "card": {"id": request.card_id} if request.card_id else {"hash": request.card_hash},
            **_buyer_and_items(request),
            "postbackUrl": request.postback_url,
            "externalRef": request.external_ref,
            "metadata": request.metadata,
        }
        if request.client_ip:
            body["ip"] = request.client_ip  # JunglePay's antifraud reads it
        try:
            # Inside a budget not even urllib3's connect retries: they would multiply the wait.
            session = self.single_attempt_session if in_budget() else self.session
            response = session.post(self._url("transactions"), json=body, timeout=timeouts)
        except requests.RequestException as exc:
            return self._after_ambiguous_card_create(request, reason=type(exc).__name__)
        if response.status_code >= 500 or response.status_code == 429:
            return self._after_ambiguous_card_create(request, reason=f"HTTP {response.status_code}")
        if response.status_code >= 400:
            refused = _refused_answer(response)
            if refused is not None:
                self.breaker.record_success()  # the provider answered: a refusal is its health, not its failure
                return refused
            raise self._rejected(response)
        try:
            charge = charge_from_transaction(response.json())
        except ValueError:
            return self._after_ambiguous_card_create(request, reason="unreadable answer to create")
        self.breaker.record_success()
        return charge

    def _after_ambiguous_card_create(self, request: CardChargeRequest, *, reason: str) -> Charge:
        return self._look_up_unconfirmed("card create", request.external_ref, request.known_transaction_ids, reason=reason)

    def _after_ambiguous_create(self, request: ChargeRequest, *, reason: str) -> Charge:
        return self._usable(self._look_up_unconfirmed("create", request.external_ref, request.superseded_transaction_ids, reason=reason))

    def _look_up_unconfirmed(self, what: str, external_ref: str, skip_transaction_ids, *, reason: str) -> Charge:
        """The create may or may not have happened: look it up; never post it again here."""
        self.breaker.record_failure()
        logger.warning(f"junglepay {what} unconfirmed; looking it up", extra={"reason": reason, "external_ref": external_ref})
        try:
            # A lookup that works says nothing about creates: it must not close the breaker.
            found = self.find_charge(
                external_ref=external_ref, skip_transaction_ids=skip_transaction_ids, counts_as_health=False, retried=False
            )
        except GatewayUnavailable:
            found = None
        if found is None:
            raise CreateUnconfirmed(_("The payment provider is unavailable right now. Please try again in a minute."))
        return found

    def _usable(self, charge: Charge) -> Charge:
        if charge.payment_method == "pix" and not charge.pix_code:
            # A PIX charge without its BR Code cannot be paid: a provider error, not a success.
            raise GatewayRejected(_("The payment provider did not return a PIX code."))
        return charge

    def find_charge(
        self, *, external_ref: str, skip_transaction_ids=(), counts_as_health: bool = True, retried: bool = True
    ) -> Charge | None:
        body = self._get_json(
            "transactions", params={"externalRef": external_ref}, counts_as_health=counts_as_health, retried=retried
        )
        skip = {str(t) for t in skip_transaction_ids}
        for item in _items(body):
            if isinstance(item, dict) and str(item.get("externalRef") or "") == external_ref:
                try:
                    charge = charge_from_transaction(item)
                except ValueError:
                    continue
                if charge.transaction_id in skip:
                    continue  # an earlier charge of the same checkout, already replaced
                return charge
        return None

    def fetch_charge(self, transaction_id: str) -> Charge:
        body = self._get_json(f"transactions/{requests.utils.quote(str(transaction_id), safe='')}")
        if isinstance(body, dict) and isinstance(body.get("data"), dict) and "status" not in body:
            body = body["data"]
        try:
            return charge_from_transaction(body)
        except ValueError as exc:
            raise self._unavailable("unreadable transaction") from exc

    def list_charges(self, *, since: datetime, max_pages: int = LIST_MAX_PAGES) -> Iterable[Charge]:
        """
        Charges created since `since`, page by page. Stopping at `max_pages`
        while the provider says more remain is not a silent end: it raises
        ListingIncomplete after yielding what was read, so reconciliation
        reports the listing as an error instead of calling it complete.
        """
        page = 1
        while True:
            body = self._get_json("transactions", params={"page": page, "createdAtFrom": since.date().isoformat()})
            items = _items(body)
            if not items:
                return
            for item in items:
                try:
                    charge = charge_from_transaction(item)
                except ValueError:
                    continue
                if charge.created_at is None or charge.created_at >= since:
                    yield charge
            if not _has_next(body, page, len(items)):
                return
            if page >= max_pages:
                logger.error("junglepay listing stopped with pages left", extra={"pages_read": page, "since": since.isoformat()})
                raise ListingIncomplete(f"stopped after {page} pages with more left at the gateway")
            page += 1

    def parse_notification(self, body: bytes) -> Notification:
        return parse_transaction_postback(body)


def _buyer_and_items(request) -> dict:
    """The part of a charge's body a PIX and a card charge share: who pays and what for."""
    return {
        "customer": {
            "name": request.customer.name,
            "email": request.customer.email,
            "phone": request.customer.phone,
            "document": {"number": request.customer.document, "type": "cpf"},
        },
        "items": [
            {"title": item.title, "unitPrice": item.unit_price_cents, "quantity": item.quantity, "tangible": False}
            for item in request.items
        ],
    }


def _refused_answer(response: requests.Response) -> Charge | None:
    """A 4xx that is a refused card transaction (it has an id and `status: refused`), read as an answer."""
    try:
        body = response.json()
    except ValueError:
        return None
    if isinstance(body, dict) and isinstance(body.get("data"), dict) and "status" not in body:
        body = body["data"]
    if not isinstance(body, dict) or str(body.get("status") or "") != "refused":
        return None
    try:
        return charge_from_transaction(body)
    except ValueError:
        return None


class ListingIncomplete(GatewayError):
    """A listing stopped at its page limit while the provider had more: what was read is not everything."""


def _items(body) -> list:
    if isinstance(body, list):
        return body
    if isinstance(body, dict):
        for key in ("data", "results", "items", "transactions"):
            if isinstance(body.get(key), list):
                return body[key]
    return []


def _has_next(body, page: int, count: int) -> bool:
    if isinstance(body, dict):
        pagination = body.get("pagination") if isinstance(body.get("pagination"), dict) else body
        if pagination.get("next"):
            return True
        total_pages = _as_int(pagination.get("totalPages") or pagination.get("total_pages"))
        if total_pages is not None:
            return page < total_pages
        if "next" in pagination:
            return False
    # No pagination metadata: a full page suggests there is more.
    return count >= 20
