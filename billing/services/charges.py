"""
Issuing the PIX charge of a checkout at the active gateway, never twice.

JunglePay has no idempotency key, so "never two charges" rests on one rule:
**a create is recorded before it is sent.** Each try is a ChargeAttempt row
committed in its own short transaction BEFORE the gateway is called. A
process killed mid-call (a deploy's SIGKILL, an OOM kill, gunicorn's
timeout) rolls back whatever it had not committed, but not that row, so the
next try knows a charge may exist and asks the gateway for it by
`externalRef` (the checkout's uuid) before it ever creates one; it adopts
what it finds.

1. Under the checkout's row lock (short): guard, complete the buyer's
   details, replace an unpayable charge, and claim the attempt. While
   another attempt is in flight (younger than the gateway budget plus a
   margin) this request may only look the charge up, never create: it
   adopts the charge if the gateway already has it, else answers "try
   again" (ChargeInProgress). An older in-flight attempt lost its process:
   it is marked abandoned, and every later try looks first.
2. No lock, no transaction: the gateway calls (look up first whenever an
   earlier attempt of this reference exists, then create), all within the
   request's gateway budget (GATEWAY_REQUEST_BUDGET_SECONDS), so a hanging
   provider never holds a row lock nor outlives the web worker.
3. Under the row lock again: store the charge and close the attempt.

Card charges (captured at once, where a second charge is money taken twice)
use the same steps: `begin_charge_attempt` under their lock, `charge_once`
(or `adopt_in_flight_charge`) outside it, then their own step 3.

A charge that can no longer be paid (its PIX expired, or its gateway is no
longer the active one) is replaced by a fresh one for the same checkout (same
externalRef). The old one is kept as a CheckoutCharge, so a late payment of
it is still matched to the checkout (services.payments.checkout_for_charge).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.db.models import Case, When
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.documents import digits_only, is_valid_cpf, normalize_phone
from billing.exceptions import (
    ChargeInProgress,
    CheckoutNotFound,
    CheckoutNotPayable,
    CustomerDetailsRequired,
    InvalidInput,
)
from billing.gateways import Charge, ChargeItem, ChargeRequest, Customer, Gateway, GatewayError
from billing.gateways.base import CreateUnconfirmed, gateway_budget
from billing.models import CardAttempt, ChargeAttempt, Checkout, CheckoutCharge, PaymentGateway
from billing.personal_data import document_digest
from billing.services.gateway_config import gateway_for_new_charge
from billing.services.offers import hold_coupon_again

logger = logging.getLogger(__name__)

# Seconds. gunicorn's timeout (config/gunicorn_conf.py): a request still running then is killed.
WORKER_TIMEOUT_SECONDS = 60
# How long a second /pix waits for the row lock (held only for short database work) before "try again".
LOCK_WAIT_SECONDS = 5
# Any single SQL statement of the charge transactions (PostgreSQL).
STATEMENT_TIMEOUT_SECONDS = 10
# GATEWAY_REQUEST_BUDGET_SECONDS + 2 * (LOCK_WAIT_SECONDS + STATEMENT_TIMEOUT_SECONDS) < WORKER_TIMEOUT_SECONDS
# (a test keeps it so): the gateway calls and both locked steps of a /pix end before gunicorn kills the worker.
# Seconds added to the budget before an in-flight attempt counts as abandoned (clock steps, a slow commit).
IN_FLIGHT_MARGIN_SECONDS = 5
# PostgreSQL's SQLSTATE for lock_timeout (lock_not_available).
_LOCK_NOT_AVAILABLE = "55P03"


def in_flight_window() -> timedelta:
    """
    How long an attempt may be in flight. The request that started it makes every
    gateway call within its budget, so past this a still-`in_flight` attempt lost
    its process, and whatever it created is there for a lookup to find.
    """
    return timedelta(seconds=settings.GATEWAY_REQUEST_BUDGET_SECONDS + IN_FLIGHT_MARGIN_SECONDS)


def charge_items(checkout: Checkout) -> tuple[ChargeItem, ...]:
    """The checkout's item snapshot as gateway items; one line for the total when they do not add up."""
    items = []
    for item in checkout.items or []:
        if not isinstance(item, dict):
            continue
        price = item.get("unit_price_cents", item.get("unitPrice", item.get("price_cents")))
        title = item.get("title") or item.get("name")
        if isinstance(price, int) and price >= 0 and title:
            items.append(ChargeItem(title=str(title)[:120], unit_price_cents=price, quantity=int(item.get("quantity") or 1)))
    if items and sum(i.unit_price_cents * i.quantity for i in items) == checkout.total_cents:
        return tuple(items)
    # An upgrade's credit (or an odd snapshot): one line for exactly what is charged.
    return (ChargeItem(title=checkout.plan.name[:120], unit_price_cents=checkout.total_cents),)


def charge_request(checkout: Checkout, *, gateway_config, superseded_transaction_ids=()) -> ChargeRequest:
    return ChargeRequest(
        superseded_transaction_ids=tuple(superseded_transaction_ids),
        external_ref=str(checkout.public_id),
        amount_cents=checkout.total_cents,
        customer=Customer(
            name=checkout.customer_name,
            email=checkout.customer_email,
            document=digits_only(checkout.customer_document),
            phone=digits_only(checkout.customer_phone),
        ),
        items=charge_items(checkout),
        postback_url=gateway_config.postback_url,
        metadata={"checkout_id": str(checkout.public_id), "purpose": checkout.purpose},
    )


def issue_pix_charge(*, checkout_id, cpf: str | None = None, phone: str | None = None, now=None) -> Checkout:
    """
    The checkout's PIX charge: created at the active gateway on the first
    call, returned as stored while it is payable, replaced by a fresh one
    once it is not (PIX expired, gateway switched off). `cpf` and `phone`
    complete a checkout that lacks them (a renewal of a subscription we never
    charged ourselves); a charge is never sent without them. Raises
    CheckoutNotFound, CheckoutNotPayable, CustomerDetailsRequired,
    InvalidInput, ChargeInProgress, GatewayUnavailable or GatewayRejected.
    """
    now = now or timezone.now()
    _hold_coupon_for_fresh_charge(checkout_id, now=now)
    # Inside a request the request's budget (config.middleware) is the tighter one and wins.
    with gateway_budget():
        begun = _begin_pix_charge(checkout_id=checkout_id, cpf=cpf, phone=phone, now=now)
        if isinstance(begun, Checkout):
            return begun
        if begun.attempt is None:
            return adopt_in_flight_charge(begun, now=now)
        charge = charge_once(begun, now=now)
        return store_charge(begun, charge, now=now)


@dataclass(frozen=True)
class BegunCharge:
    """A charge about to be asked of the gateway, its attempt already committed."""

    checkout_id: int
    gateway: Gateway
    request: ChargeRequest
    # None: another attempt is in flight; this caller may only adopt its charge (adopt_in_flight_charge).
    attempt: ChargeAttempt | None
    look_first: bool


@transaction.atomic
def _begin_pix_charge(*, checkout_id, cpf, phone, now) -> Checkout | BegunCharge:
    checkout = _lock_for_charge(checkout_id)
    if checkout is None:
        raise CheckoutNotFound(_("Checkout not found."))
    if checkout.gateway_transaction_id and (checkout.status != Checkout.Status.PENDING or _charge_is_payable(checkout, now=now)):
        return checkout  # the same charge, never a second one
    if checkout.status != Checkout.Status.PENDING:
        raise CheckoutNotPayable(_("This checkout can no longer be paid."))
    if checkout.payment_method != Checkout.Method.PIX:
        # A buyer whose card was refused may switch to PIX in place (contract §3), where the plan takes PIX
        # and no card charge of the checkout may still be paying it.
        if not checkout.plan.accepts_pix and checkout.purpose == Checkout.Purpose.NEW:
            raise InvalidInput("payment_method", _("This checkout is not a PIX payment."), code="invalid_method")
        if checkout.card_attempts.filter(status__in=CardAttempt.OPEN_STATUSES).exists():
            raise ChargeInProgress(_("Your card payment is being processed. Please wait a moment."))
        checkout.payment_method = Checkout.Method.PIX
        checkout.installments = 1
        checkout.save(update_fields=["payment_method", "installments", "updated_at"])
    _complete_customer_details(checkout, cpf=cpf, phone=phone)

    gateway = gateway_for_new_charge()
    if checkout.gateway_transaction_id:
        _supersede_charge(checkout, now=now)
    # The checkout's earlier PIX charges, and its card charges (they share its externalRef): a lookup
    # for its PIX must take none of them. One query.
    superseded = list(
        checkout.previous_charges.order_by().values_list("transaction_id", flat=True).union(
            checkout.card_attempts.exclude(transaction_id="").order_by().values_list("transaction_id", flat=True), all=True
        )
    )
    request = charge_request(checkout, gateway_config=gateway.config, superseded_transaction_ids=superseded)
    attempt, look_first = begin_charge_attempt(checkout=checkout, gateway_config=gateway.config, external_ref=request.external_ref, now=now)
    if checkout.gateway_id != gateway.config.pk:
        checkout.gateway = gateway.config
        checkout.save(update_fields=["gateway", "updated_at"])
    return BegunCharge(checkout_id=checkout.pk, gateway=gateway, request=request, attempt=attempt, look_first=look_first)


def begin_charge_attempt(*, checkout: Checkout, gateway_config: PaymentGateway, external_ref: str, now) -> tuple[ChargeAttempt | None, bool]:
    """
    Claim the create of `external_ref` at this gateway (call with the checkout locked; it commits
    with the caller's short transaction, before any gateway call). Returns (the attempt, look first?):
    (None, True) while another attempt is in flight, whose charge this caller may only adopt.
    """
    attempts = ChargeAttempt.objects.filter(gateway=gateway_config, external_ref=external_ref)
    # One query: the attempt in flight if any (there is at most one), else whether there was any.
    earlier = list(attempts.order_by(Case(When(outcome=ChargeAttempt.Outcome.IN_FLIGHT, then=0), default=1))[:1])
    in_flight = earlier[0] if earlier and earlier[0].outcome == ChargeAttempt.Outcome.IN_FLIGHT else None
    if in_flight is not None and in_flight.started_at > now - in_flight_window():
        return None, True
    if in_flight is not None:
        # Its process died mid-call (killed, or timed out by gunicorn): its charge may exist.
        attempts.filter(pk=in_flight.pk).update(outcome=ChargeAttempt.Outcome.ABANDONED, finished_at=now)
        logger.warning("charge attempt abandoned by its process", extra={"external_ref": external_ref, "attempt": in_flight.pk})
    # Any earlier attempt may have created a charge we never stored: ask before creating.
    look_first = bool(earlier)
    attempt = ChargeAttempt.objects.create(checkout=checkout, gateway=gateway_config, external_ref=external_ref, started_at=now)
    return attempt, look_first


def charge_once(begun: BegunCharge, *, now) -> Charge:
    """
    The gateway calls of the attempt's owner, outside any transaction and lock:
    look the charge up by `externalRef` first when an earlier attempt may have
    created it, and create only when it is not there.
    """
    gateway, request, attempt = begun.gateway, begun.request, begun.attempt
    try:
        found = _find(begun) if begun.look_first else None
        return found if found is not None else gateway.create_charge(request)
    except GatewayError as exc:
        # Unconfirmed: the gateway may hold a charge (every later attempt looks first anyway).
        outcome = ChargeAttempt.Outcome.UNCONFIRMED if isinstance(exc, CreateUnconfirmed) else ChargeAttempt.Outcome.FAILED
        ChargeAttempt.objects.filter(pk=attempt.pk).update(outcome=outcome, finished_at=now, error=str(exc)[:300])
        raise


def adopt_in_flight_charge(begun: BegunCharge, *, now) -> Checkout:
    """
    Another attempt is in flight (a second tab, or a retry after its worker was
    killed): never create. The charge the gateway already holds is adopted;
    else the other attempt gets LOCK_WAIT_SECONDS to store its charge; else
    "try again" (ChargeInProgress), until the attempt is old enough to count
    as abandoned.
    """
    try:
        found = _find(begun)
    except GatewayError:
        found = None  # the other attempt may still store its charge
    if found is not None:
        return store_charge(begun, found, now=now)
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while time.monotonic() < deadline:
        time.sleep(0.25)
        stored = Checkout.objects.filter(pk=begun.checkout_id).exclude(gateway_transaction_id="").first()
        if stored is not None:
            return stored
    raise ChargeInProgress(_("Your PIX code is being generated. Please try again in a few seconds."))


def _find(begun: BegunCharge) -> Charge | None:
    request = begun.request
    found = begun.gateway.find_charge(external_ref=request.external_ref, skip_transaction_ids=request.superseded_transaction_ids)
    if found is not None:
        logger.info("charge found by its external reference", extra={"external_ref": request.external_ref, "transaction": found.transaction_id})
    return found


@transaction.atomic
def store_charge(begun: BegunCharge, charge: Charge, *, now) -> Checkout:
    """Apply the gateway's answer under the row lock, and close the attempt."""
    checkout = _lock_for_charge(None, pk=begun.checkout_id)
    config = begun.gateway.config
    if begun.attempt is not None:
        ChargeAttempt.objects.filter(pk=begun.attempt.pk).update(
            outcome=ChargeAttempt.Outcome.CHARGED, finished_at=now, transaction_id=charge.transaction_id, error=""
        )
    if checkout.gateway_transaction_id == charge.transaction_id:
        return checkout  # adopted meanwhile by a request that looked it up
    if checkout.gateway_transaction_id:
        # Another attempt stored a different charge meanwhile (only possible past the in-flight window):
        # keep the stored one; ours stays matched to this checkout, so a payment of it is never lost.
        CheckoutCharge.objects.get_or_create(
            gateway=config, transaction_id=charge.transaction_id,
            defaults={"checkout": checkout, "pix_expires_at": charge.expires_at, "created_at": now},
        )
        logger.error(
            "a second charge for one checkout", extra={"checkout": str(checkout.public_id), "transaction": charge.transaction_id}
        )
        return checkout
    if charge.amount_cents is not None and charge.amount_cents != checkout.total_cents:
        logger.error(
            "gateway charge amount differs from checkout",
            extra={"checkout": str(checkout.public_id), "charged": charge.amount_cents, "total": checkout.total_cents},
        )
    checkout.gateway = config
    checkout.gateway_transaction_id = charge.transaction_id
    checkout.gateway_status = charge.provider_status
    checkout.gateway_response = charge.raw
    checkout.pix_code = charge.pix_code
    checkout.pix_url = charge.pix_url[:500]
    checkout.pix_expires_at = charge.expires_at
    checkout.save(update_fields=CHARGE_FIELDS)
    logger.info(
        "pix charge issued",
        extra={"checkout": str(checkout.public_id), "gateway": begun.gateway.kind, "transaction": charge.transaction_id},
    )
    return checkout


CHARGE_FIELDS = ["gateway", "gateway_transaction_id", "gateway_status", "gateway_response", "pix_code", "pix_url", "pix_expires_at", "updated_at"]


def _hold_coupon_for_fresh_charge(checkout_id, *, now) -> None:
    """
    A discounted first purchase whose PIX can no longer be paid is about to get
    a fresh one: its coupon is checked and held again (services.offers), in
    this short transaction of its own, so the coupon's row is never locked
    while the gateway is being called. The hold is `reopened_at` until the
    fresh PIX's expiry takes over.

    Most calls are a first PIX (no charge yet) or carry no coupon: one read
    without a lock says so, and no transaction is opened. Neither answer can
    turn stale in a way that matters: the coupon is set when the checkout is
    created, and a charge stored meanwhile by another request is payable.
    """
    if not Checkout.objects.filter(public_id=checkout_id, coupon__isnull=False).exclude(gateway_transaction_id="").exists():
        return
    with transaction.atomic():
        _hold_coupon_again_if_unpayable(checkout_id, now=now)


def _hold_coupon_again_if_unpayable(checkout_id, *, now) -> None:
    checkout = _lock_for_charge(checkout_id)
    if (
        checkout is None
        or checkout.coupon_id is None
        or checkout.status != Checkout.Status.PENDING
        or not checkout.gateway_transaction_id
        or _charge_is_payable(checkout, now=now)
    ):
        return
    hold_coupon_again(checkout=checkout, now=now)
    checkout.reopened_at = now
    checkout.save(update_fields=["reopened_at", "updated_at"])


def _lock_for_charge(checkout_id, *, pk=None) -> Checkout | None:
    """
    The checkout row (by public id, or by `pk`), locked, waiting at most
    LOCK_WAIT_SECONDS (PostgreSQL): the lock is held for database work only,
    and a caller that still cannot get it answers "try again".
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # Both SET LOCALs (is_local: for this transaction only) in one round trip.
            cursor.execute(
                "SELECT set_config('lock_timeout', %s, true), set_config('statement_timeout', %s, true)",
                [f"{int(LOCK_WAIT_SECONDS * 1000)}ms", f"{int(STATEMENT_TIMEOUT_SECONDS * 1000)}ms"],
            )
    try:
        return (
            Checkout.objects.select_for_update(of=("self",))
            .select_related("plan")
            .filter(**({"pk": pk} if pk is not None else {"public_id": checkout_id}))
            .first()
        )
    except OperationalError as exc:
        if getattr(exc.__cause__, "sqlstate", None) == _LOCK_NOT_AVAILABLE:
            raise ChargeInProgress(_("Your PIX code is being generated. Please try again in a few seconds.")) from exc
        raise


def _charge_is_payable(checkout: Checkout, *, now) -> bool:
    """The stored charge can still be paid: its gateway is the active one and its PIX has not expired."""
    # Asked, not read from a join: a row re-read after waiting for the lock comes with the joined
    # columns of the version before (PostgreSQL re-checks only the locked table), gateway NULL included.
    if checkout.gateway_id is None or not PaymentGateway.objects.filter(pk=checkout.gateway_id, is_active=True).exists():
        return False
    return checkout.pix_expires_at is None or checkout.pix_expires_at > now


def _supersede_charge(checkout: Checkout, *, now) -> None:
    """Keep the current charge as a previous one (its late payment still counts), and clear it for a fresh one."""
    CheckoutCharge.objects.create(
        checkout=checkout,
        gateway_id=checkout.gateway_id,
        transaction_id=checkout.gateway_transaction_id,
        pix_expires_at=checkout.pix_expires_at,
        created_at=now,
    )
    logger.info(
        "pix charge replaced",
        extra={"checkout": str(checkout.public_id), "transaction": checkout.gateway_transaction_id},
    )
    checkout.gateway_transaction_id = ""
    checkout.gateway_status = ""
    checkout.gateway_response = None
    checkout.pix_code = ""
    checkout.pix_url = ""
    checkout.pix_expires_at = None
    checkout.save(update_fields=CHARGE_FIELDS)


def needs_customer_details(checkout: Checkout) -> bool:
    """A PIX charge needs the payer's CPF and phone; renewals of subscriptions we never charged lack them."""
    return not digits_only(checkout.customer_document) or not digits_only(checkout.customer_phone)


def _complete_customer_details(checkout: Checkout, *, cpf: str | None, phone: str | None) -> None:
    """Store the CPF and phone given for a checkout that lacks them, validated like /api/checkout/process."""
    changed = []
    if cpf and not digits_only(checkout.customer_document):
        if not is_valid_cpf(cpf):
            raise InvalidInput("cpf", _("This CPF is not valid: check its 11 digits."))
        checkout.customer_document = digits_only(cpf)
        checkout.customer_document_digest = document_digest(cpf)
        changed += ["customer_document", "customer_document_digest"]
    if phone and not digits_only(checkout.customer_phone):
        normalized = normalize_phone(phone)
        if normalized is None:
            raise InvalidInput("phone", _("Enter your mobile number with area code (DDD), like (11) 91234-5678."))
        checkout.customer_phone = normalized[:20]
        changed.append("customer_phone")
    if changed:
        checkout.save(update_fields=[*changed, "updated_at"])
    if needs_customer_details(checkout):
        missing = {}
        if not digits_only(checkout.customer_document):
            missing["cpf"] = [_("Enter your CPF to receive the PIX code.")]
        if not digits_only(checkout.customer_phone):
            missing["phone"] = [_("Enter your phone number with area code (DDD) to receive the PIX code.")]
        raise CustomerDetailsRequired(_("Your CPF and phone are required to issue the PIX charge."), fields=missing)
