"""
Issuing the PIX charge of a checkout at the active gateway.

The checkout row is locked for the whole call so that two clicks (or two
tabs) on "pay with PIX" can never create two charges: the second waits, then
finds the transaction id the first stored and returns that charge. The lock
is held across one HTTP call bounded by the client's timeouts; that is the
price of "never two charges" without an idempotency key at the provider.

The lock is bounded so that it can never outlive the web worker: the
provider calls made under it (CHARGE_HTTP_BUDGET) end well before gunicorn's
timeout (WORKER_TIMEOUT_SECONDS, set in the Dockerfile), so a worker is never
killed holding a created-but-unstored charge; on PostgreSQL a second caller
waits at most LOCK_WAIT_SECONDS for the lock and then answers "try again"
(ChargeInProgress) instead of queueing behind the first.

A charge that can no longer be paid (its PIX expired, or its gateway is no
longer the active one) is replaced by a fresh one for the same checkout (same
externalRef). The old one is kept as a CheckoutCharge, so a late payment of
it is still matched to the checkout (services.payments.checkout_for_charge).
"""

from __future__ import annotations

import logging

from django.db import OperationalError, connection, transaction
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
from billing.gateways import ChargeItem, ChargeRequest, Customer, GatewayUnavailable
from billing.gateways.junglepay import CONNECT_TIMEOUT, READ_TIMEOUT, CreateUnconfirmed
from billing.gateways.sandbox import SANDBOX_OUTCOMES, sandbox_postback
from billing.models import CardAttempt, Checkout, CheckoutCharge, PaymentGateway
from billing.personal_data import document_digest
from billing.services.gateway_config import gateway_for_new_charge

logger = logging.getLogger(__name__)

# Marks a checkout whose create failed ambiguously: the next attempt looks the charge up first.
CREATE_UNCONFIRMED = "create_unconfirmed"

# Seconds. gunicorn's --timeout (Dockerfile, docker-compose.yml): a request still running then is killed.
WORKER_TIMEOUT_SECONDS = 60
# The longest the provider can keep us waiting while the row is locked: the create, then one
# single-attempt lookup after an ambiguous answer (JunglePayGateway._after_ambiguous_create).
CHARGE_HTTP_BUDGET = 2 * (CONNECT_TIMEOUT + READ_TIMEOUT)
# How long a second /pix waits for the first one's lock before answering "try again".
LOCK_WAIT_SECONDS = 5
# Any single SQL statement of the charge transaction (PostgreSQL).
STATEMENT_TIMEOUT_SECONDS = 10
# CHARGE_HTTP_BUDGET + LOCK_WAIT_SECONDS + STATEMENT_TIMEOUT_SECONDS < WORKER_TIMEOUT_SECONDS (a test keeps it so).
# PostgreSQL's SQLSTATE for lock_timeout (lock_not_available).
_LOCK_NOT_AVAILABLE = "55P03"


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
    pending_error = None
    with transaction.atomic():
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
        superseded = list(checkout.previous_charges.values_list("transaction_id", flat=True))
        request = charge_request(checkout, gateway_config=gateway.config, superseded_transaction_ids=superseded)
        try:
            charge = None
            if checkout.gateway_status == CREATE_UNCONFIRMED and checkout.gateway_id == gateway.config.pk:
                # A previous create may have gone through after all: look before creating.
                charge = gateway.find_charge(external_ref=request.external_ref, skip_transaction_ids=superseded)
            if charge is None:
                charge = gateway.create_charge(request)
        except GatewayUnavailable as exc:
            if isinstance(exc, CreateUnconfirmed):
                # Committed on purpose (no raise inside the block): the mark must survive the error.
                checkout.gateway = gateway.config
                checkout.gateway_status = CREATE_UNCONFIRMED
                checkout.save(update_fields=["gateway", "gateway_status", "updated_at"])
            pending_error = exc
        else:
            if charge.amount_cents is not None and charge.amount_cents != checkout.total_cents:
                logger.error(
                    "gateway charge amount differs from checkout",
                    extra={"checkout": str(checkout.public_id), "charged": charge.amount_cents, "total": checkout.total_cents},
                )
            checkout.gateway = gateway.config
            checkout.gateway_transaction_id = charge.transaction_id
            checkout.gateway_status = charge.provider_status
            checkout.gateway_response = charge.raw
            checkout.pix_code = charge.pix_code
            checkout.pix_url = charge.pix_url[:500]
            checkout.pix_expires_at = charge.expires_at
            checkout.save(update_fields=CHARGE_FIELDS)
            logger.info(
                "pix charge issued",
                extra={"checkout": str(checkout.public_id), "gateway": gateway.kind, "transaction": charge.transaction_id},
            )
    if pending_error is not None:
        raise pending_error
    return checkout


CHARGE_FIELDS = ["gateway", "gateway_transaction_id", "gateway_status", "gateway_response", "pix_code", "pix_url", "pix_expires_at", "updated_at"]


def _lock_for_charge(checkout_id) -> Checkout | None:
    """
    The checkout row, locked, waiting at most LOCK_WAIT_SECONDS (PostgreSQL):
    a second /pix while the first is talking to the provider answers "try
    again" instead of queueing until a worker timeout.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # SET LOCAL: for this transaction only. Integers, never user input.
            cursor.execute(f"SET LOCAL lock_timeout = '{int(LOCK_WAIT_SECONDS * 1000)}ms'")
            cursor.execute(f"SET LOCAL statement_timeout = '{int(STATEMENT_TIMEOUT_SECONDS * 1000)}ms'")
    try:
        return (
            Checkout.objects.select_for_update(of=("self",))
            .select_related("plan")
            .filter(public_id=checkout_id)
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
            raise InvalidInput("cpf", _("Enter a valid CPF."))
        checkout.customer_document = digits_only(cpf)
        checkout.customer_document_digest = document_digest(cpf)
        changed += ["customer_document", "customer_document_digest"]
    if phone and not digits_only(checkout.customer_phone):
        normalized = normalize_phone(phone)
        if normalized is None:
            raise InvalidInput("phone", _("Enter a phone number with area code (DDD)."))
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


@transaction.atomic
def simulate_sandbox_event(*, checkout_id, outcome: str) -> bytes:
    """Change the sandbox's side of the charge and return the postback body it would send."""
    checkout = Checkout.objects.select_for_update().filter(public_id=checkout_id, gateway__kind=PaymentGateway.Kind.SANDBOX).first()
    if checkout is None or not checkout.gateway_transaction_id or not checkout.gateway_response:
        raise CheckoutNotPayable(_("Create the PIX charge first."), code="no_charge")
    provider_status = SANDBOX_OUTCOMES[outcome]
    current = checkout.gateway_response.get("status")
    if provider_status == "refunded" and current != "paid":
        raise CheckoutNotPayable(_("Only a paid charge can be refunded."), code="not_paid")
    if provider_status in ("paid", "refused", "expired") and current not in ("waiting_payment", "processing", provider_status):
        raise CheckoutNotPayable(_("This charge is no longer waiting for payment."), code="not_pending")
    transaction_data = dict(checkout.gateway_response)
    transaction_data["status"] = provider_status
    if provider_status == "paid":
        transaction_data["paidAt"] = timezone.now().isoformat()
    checkout.gateway_response = transaction_data
    checkout.save(update_fields=["gateway_response", "updated_at"])
    return sandbox_postback(transaction_data, transaction_id=checkout.gateway_transaction_id)
