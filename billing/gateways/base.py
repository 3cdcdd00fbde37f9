"""
The one small interface every payment provider implements, and the plain
data it speaks. Views, webhooks and reconciliation talk to these types only,
so a provider's quirks stay inside its own module.

- `create_charge(request)` issues a PIX charge and returns the `Charge`;
- `create_card_charge(request)` charges a card (a browser's hash, or a saved
  card's id) and returns the `Charge`: paid, pending (processing; a postback
  follows) or failed with its `refusal`; never raises for a refusal;
- `fetch_charge(transaction_id)` asks the provider for the current truth;
- `list_charges(since=)` lists recent charges, for reconciliation;
- `parse_notification(body)` turns a postback body into a `Notification`;
- `refund(transaction_id, amount_cents)` refunds a paid charge in full where
  the provider has a refund API (`RefundResult`), or returns None where it
  has none (JunglePay): staff then refund by hand (billing.models.RefundRequest).

Every provider call runs inside a gateway budget (`gateway_budget`): a web
request opens one (config.middleware.GatewayBudgetMiddleware), and so do the
charge service and webhook processing for calls made outside a request. A
provider client asks `call_timeouts()` for each call's timeouts, clipped to
what is left, so all the calls of one request end within
GATEWAY_REQUEST_BUDGET_SECONDS, well before gunicorn's worker timeout.
"""

from __future__ import annotations

import enum
import json
import time
from collections.abc import Iterable
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from django.conf import settings
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from billing.exceptions import GatewayUnavailable

if TYPE_CHECKING:
    from billing.models import PaymentGateway


class ChargeStatus(enum.StrEnum):
    """A provider's status reduced to what our state machine acts upon."""

    PENDING = "pending"  # waiting_payment, processing, authorized
    # Part of the money arrived: recorded and listed for a person, never access.
    PARTIALLY_PAID = "partially_paid"
    PAID = "paid"
    FAILED = "failed"  # refused
    CANCELED = "canceled"
    EXPIRED = "expired"
    REFUNDED = "refunded"  # refunded, chargedback, in_protest (MED): access revoked
    UNKNOWN = "unknown"  # a status we do not know: stored, never acted upon


# Provider statuses that refund a charge (ChargeStatus.REFUNDED) but may be
# reversed: a PIX dispute (MED) decided for the seller goes back to `paid`.
DISPUTED_PROVIDER_STATUSES = frozenset({"in_protest"})
# Provider statuses of a refund the customer's bank forced (payment.chargedback, not .refunded).
CHARGEBACK_PROVIDER_STATUSES = frozenset({"chargedback", "in_protest"})


# Seconds: one HTTP call's connect and read timeouts, before any budget clips them.
CONNECT_TIMEOUT = 3.05
READ_TIMEOUT = 15
# Below this many seconds left in the budget, a call is not started at all.
_MIN_CALL_SECONDS = 0.5

# time.monotonic() by which every provider call must have ended; None outside any budget.
_deadline: ContextVar[float | None] = ContextVar("gateway_deadline", default=None)


@contextmanager
def gateway_budget(seconds: float | None = None):
    """
    Every provider call inside ends within `seconds` (GATEWAY_REQUEST_BUDGET_SECONDS
    by default) from now, or by the enclosing budget's end when that is sooner.
    """
    seconds = settings.GATEWAY_REQUEST_BUDGET_SECONDS if seconds is None else seconds
    deadline = time.monotonic() + seconds
    outer = _deadline.get()
    token = _deadline.set(deadline if outer is None else min(outer, deadline))
    try:
        yield
    finally:
        _deadline.reset(token)


def in_budget() -> bool:
    """Whether a budget is running: calls then get one attempt each (no transport retries)."""
    return _deadline.get() is not None


def call_timeouts(connect: float = CONNECT_TIMEOUT, read: float = READ_TIMEOUT) -> tuple[float, float]:
    """(connect, read) timeouts for the next call, clipped to the budget left; BudgetExhausted when none is."""
    deadline = _deadline.get()
    if deadline is None:
        return connect, read
    left = deadline - time.monotonic()
    if left < _MIN_CALL_SECONDS:
        raise BudgetExhausted(gettext("The payment provider is taking too long. Please try again in a minute."))
    return min(connect, left), min(read, left)


class BudgetExhausted(GatewayUnavailable):
    """The request's time for provider calls is used up: the call was not made (503, try again)."""


class CreateUnconfirmed(GatewayUnavailable):
    """A create failed ambiguously (timeout, 5xx, unreadable answer) and no charge was found: it may exist."""


class NotificationInvalid(Exception):
    """A postback body that cannot be understood (malformed JSON, wrong shape)."""


def json_object(body: bytes) -> dict:
    """A postback body as a JSON object, or NotificationInvalid saying why not."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise NotificationInvalid(f"malformed JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise NotificationInvalid("the body is not a JSON object")
    return payload


@dataclass(frozen=True)
class Customer:
    name: str
    email: str
    document: str  # CPF, digits only
    phone: str  # digits only, with DDD


@dataclass(frozen=True)
class ChargeItem:
    title: str
    unit_price_cents: int
    quantity: int = 1


@dataclass(frozen=True)
class ChargeRequest:
    """What we ask a provider to charge. `external_ref` is the checkout's uuid."""

    external_ref: str
    amount_cents: int
    customer: Customer
    items: tuple[ChargeItem, ...]
    postback_url: str
    expires_in_days: int = 1
    metadata: dict = field(default_factory=dict)
    # Earlier charges of the same checkout (same external_ref), replaced after expiry:
    # a lookup by external_ref must not mistake one of them for the charge just created.
    superseded_transaction_ids: tuple[str, ...] = ()

    def __post_init__(self):
        total = sum(item.unit_price_cents * item.quantity for item in self.items)
        if total != self.amount_cents:
            # JunglePay rejects a charge whose items do not add up; so do we, earlier.
            raise ValueError(f"items add up to {total}, amount is {self.amount_cents}")


@dataclass(frozen=True)
class CardChargeRequest:
    """
    A card charge. Exactly one of `card_hash` (made by the gateway's tokenizer
    in the buyer's browser, valid minutes, never stored) and `card_id` (a
    saved reusable card, for renewals). `external_ref` finds it again when its
    answer is lost; the amount never changes with the installments.
    """

    external_ref: str
    amount_cents: int
    installments: int
    customer: Customer
    items: tuple[ChargeItem, ...]
    postback_url: str
    card_hash: str = ""
    card_id: str = ""
    client_ip: str = ""
    metadata: dict = field(default_factory=dict)
    # Earlier transactions with the same external_ref (refused cards, a PIX): a lookup skips them.
    known_transaction_ids: tuple[str, ...] = ()

    def __post_init__(self):
        if bool(self.card_hash) == bool(self.card_id):
            raise ValueError("a card charge needs a card hash or a saved card id, not both")
        if self.installments < 1:
            raise ValueError("installments start at 1")
        total = sum(item.unit_price_cents * item.quantity for item in self.items)
        if total != self.amount_cents:
            raise ValueError(f"items add up to {total}, amount is {self.amount_cents}")

    def __repr__(self):
        # The hash stands for the card for a few minutes: never in a log line or a traceback.
        return f"CardChargeRequest(external_ref={self.external_ref!r}, amount_cents={self.amount_cents}, installments={self.installments})"


@dataclass(frozen=True)
class Card:
    """What a gateway tells about a charged card: enough to show it and charge it again, nothing more."""

    card_id: str = ""
    brand: str = ""
    last_digits: str = ""
    exp_month: int | None = None
    exp_year: int | None = None
    reusable: bool = False


@dataclass(frozen=True)
class Refusal:
    """Why the card's bank (or the gateway's antifraud) said no: its code, and its words."""

    code: str = ""
    message: str = ""


@dataclass(frozen=True)
class Charge:
    """A provider's charge, as the provider sees it now."""

    transaction_id: str
    status: ChargeStatus
    provider_status: str
    amount_cents: int | None
    external_ref: str = ""
    pix_code: str = ""
    pix_url: str = ""
    expires_at: datetime | None = None
    paid_at: datetime | None = None
    created_at: datetime | None = None
    raw: dict = field(default_factory=dict)
    # What arrived so far, when the provider says (a partial payment); cents.
    paid_amount_cents: int | None = None
    # Card charges: the card as the provider returns it, and a refusal's reason.
    payment_method: str = "pix"
    card: Card | None = None
    refusal: Refusal | None = None
    installments: int | None = None


@dataclass(frozen=True)
class Notification:
    """
    A postback reduced to what we need. `event_id` dedupes deliveries (unique
    per provider in the database). `transaction_id` is what we fetch before
    acting; for providers without an API (Dias) the notification itself is
    the only truth and carries the payer.
    """

    event_id: str
    kind: str  # "transaction" for payment events; anything else is stored and ignored
    transaction_id: str = ""
    external_ref: str = ""
    provider_status: str = ""
    status: ChargeStatus = ChargeStatus.UNKNOWN
    amount_cents: int | None = None
    payer_email: str = ""
    payer_name: str = ""
    # The body as parsed JSON, kept so the webhook stores it without parsing again.
    payload: dict = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class RefundResult:
    """
    A refund the provider accepted. The refund is applied to our records only
    by the provider's `refunded` postback, through the webhook path, like any
    other status: `postback` is the body the provider sends (the sandbox
    returns it, to be delivered in-process; a real provider posts it itself).
    """

    transaction_id: str
    postback: bytes = b""


class Gateway:
    """Base class: one instance per request or task, built from a PaymentGateway row."""

    kind: str = ""

    def __init__(self, config: PaymentGateway):
        self.config = config

    def create_charge(self, request: ChargeRequest) -> Charge:  # pragma: no cover - interface
        raise NotImplementedError

    def create_card_charge(self, request: CardChargeRequest) -> Charge:  # pragma: no cover - interface
        raise NotImplementedError

    @property
    def takes_cards(self) -> bool:
        return type(self).create_card_charge is not Gateway.create_card_charge

    def tokenizer_url(self) -> str:
        """The script the buyer's browser turns a card into a hash with."""
        return settings.JUNGLEPAY_JS_URL

    def find_charge(self, *, external_ref: str, skip_transaction_ids=()) -> Charge | None:
        """The charge created for `external_ref`, if the provider has one (never creates), other than `skip_transaction_ids`."""
        raise NotImplementedError  # pragma: no cover - interface

    def fetch_charge(self, transaction_id: str) -> Charge:  # pragma: no cover - interface
        raise NotImplementedError

    def list_charges(self, *, since: datetime) -> Iterable[Charge]:  # pragma: no cover - interface
        raise NotImplementedError

    def parse_notification(self, body: bytes) -> Notification:  # pragma: no cover - interface
        raise NotImplementedError

    def refund(self, transaction_id: str, amount_cents: int) -> RefundResult | None:
        """Refund a paid charge in full; None: this provider has no refund API (a person refunds it)."""
        return None


NO_GATEWAY_MESSAGE = _("No payment gateway is configured. Please try again later.")
