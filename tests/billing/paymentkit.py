"""Helpers shared by the payments tests: recorded provider payloads and ready-made gateways/checkouts."""

import json
from datetime import timedelta
from pathlib import Path

import responses
from django.utils import timezone

from billing.gateways.base import Charge
from billing.models import Checkout, PaymentGateway
from billing.services import create_checkout, issue_pix_charge
from tests.factories import CheckoutFactory, GatewayFactory, PlanFactory, SubscriptionFactory, UserFactory

FIXTURES = Path(__file__).parent / "fixtures"
JP = "https://jp.test/v1"
SECRET = "sk_live_4f9a0c5d8e7b"


def _payload_dates(now) -> dict:
    """The recorded payloads' dates, moved to the clock of the test (frozen or real): created five minutes
    ago, paid two minutes ago, the PIX payable until tomorrow (its day, as JunglePay writes it)."""
    now = now or timezone.now()
    return {
        "created_at": (now - timedelta(minutes=5)).isoformat(),
        "paid_at": (now - timedelta(minutes=2)).isoformat(),
        "expires_on": timezone.localdate(now + timedelta(days=1)).isoformat(),
    }


def payload(name: str, *, now=None, **replacements) -> dict:
    """A recorded provider payload, with __REF__/__TOKEN__ and the date placeholders filled."""
    text = (FIXTURES / name).read_text()
    for key, value in {**_payload_dates(now), **replacements}.items():
        text = text.replace(f"__{key.upper()}__", str(value))
    return json.loads(text)


def junglepay(*, active=True) -> PaymentGateway:
    if active:
        PaymentGateway.objects.filter(is_active=True, kind__in=PaymentGateway.INTERNAL_KINDS).update(is_active=False)
    return GatewayFactory(kind=PaymentGateway.Kind.JUNGLEPAY, secret_key=SECRET, is_active=active)


def sandbox(*, active=True) -> PaymentGateway:
    if active:
        PaymentGateway.objects.filter(is_active=True, kind__in=PaymentGateway.INTERNAL_KINDS).update(is_active=False)
    return GatewayFactory(kind=PaymentGateway.Kind.SANDBOX, is_active=active)


def dias(*, active=True) -> PaymentGateway:
    return GatewayFactory(kind=PaymentGateway.Kind.DIAS, is_active=active)


def jp_checkout(gateway: PaymentGateway, *, transaction_id="282", total=3980, **kwargs) -> Checkout:
    """A pending checkout whose JunglePay charge exists (id 282, R$ 39,80)."""
    plan = kwargs.pop("plan", None) or PlanFactory(price_cents=total)
    return CheckoutFactory(
        plan=plan,
        plan_price_cents=total,
        gateway=gateway,
        gateway_transaction_id=transaction_id,
        gateway_status="waiting_payment",
        **kwargs,
    )


def transaction(checkout: Checkout, **changes) -> dict:
    data = payload("junglepay_transaction_waiting.json", ref=checkout.public_id, token="t")
    data["id"] = int(checkout.gateway_transaction_id) if checkout.gateway_transaction_id.isdigit() else checkout.gateway_transaction_id
    data["amount"] = checkout.total_cents
    data.update(changes)
    return data


def postback(checkout: Checkout, *, postback_id=686401, status="paid", **changes) -> dict:
    body = payload("junglepay_postback_paid.json", ref=checkout.public_id, token="t")
    body["id"] = postback_id
    body["objectId"] = checkout.gateway_transaction_id
    body["data"].update({"id": checkout.gateway_transaction_id, "status": status, "amount": checkout.total_cents, **changes})
    return body


def transaction_postback(transaction_data: dict, *, postback_id: int) -> dict:
    """A JunglePay postback around a transaction as the provider holds it (e.g. tests/fakes/junglepay.py)."""
    return {
        "id": postback_id,
        "type": "transaction",
        "objectId": str(transaction_data["id"]),
        "url": "https://site.test/api/webhook/junglepay",
        "data": dict(transaction_data),
    }


def dias_body(*, external_id: str, status: str, amount_cents: int, email: str, name: str = "", now=None) -> dict:
    """A Dias Marketplace postback (PENDING or PAID) built on the recorded one."""
    body = payload("dias_paid.json" if status == "PAID" else "dias_pending.json", now=now)
    body.update(id=external_id, externalRef=external_id, status=status, amount=amount_cents)
    body["payer"] = {**body.get("payer", {}), "email": email, "name": name}
    return body


def post_webhook(client, provider_path: str, body, *, token: str):
    raw = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.post(f"/api/webhook/{provider_path}?token={token}", data=raw, content_type="application/json")


def use_fake_junglepay(settings_fixture):
    settings_fixture.JUNGLEPAY_API_URL = JP
    return JP


def jp_answer(checkout, *, transaction_id=282, expires_on=None, **changes):
    """JunglePay's answer to a create for `checkout`: transaction `transaction_id`, PIX payable through `expires_on`."""
    data = payload("junglepay_transaction_waiting.json", ref=checkout.public_id, token="t")
    data.update({"id": transaction_id, "amount": checkout.total_cents, **changes})
    if expires_on is not None:
        data["pix"]["expirationDate"] = expires_on.isoformat()
    return data


def live_subscription_with_renewal(*, plan=None, document="52998224725", phone="11987654321", now=None):
    """A live subscription ending in two days and its pending renewal checkout."""
    now = now or timezone.now()
    plan = plan or PlanFactory(price_cents=3980)
    user = UserFactory()
    subscription = SubscriptionFactory(user=user, plan=plan, start_date=now - timedelta(days=28), end_date=now + timedelta(days=2))
    renewal = create_checkout(
        plan=plan, customer_name="Ana Souza", customer_email=user.email, customer_document=document, customer_phone=phone,
        user=user, purpose=Checkout.Purpose.RENEWAL, subscription=subscription, now=now,
    )
    return subscription, renewal


def renewal_with_two_charges(jp, *, now):
    """A renewal whose expired charge 282 was replaced by 283 (both still payable at the bank)."""
    subscription, renewal = live_subscription_with_renewal(now=now)
    Checkout.objects.filter(pk=renewal.pk).update(gateway=jp, gateway_transaction_id="282", pix_expires_at=now - timedelta(hours=1))
    responses.post(f"{JP}/transactions", json=jp_answer(renewal, transaction_id=283))
    issue_pix_charge(checkout_id=renewal.public_id, now=now)
    renewal.refresh_from_db()
    return subscription, renewal


def charge_of(renewal, transaction_id):
    """The checkout as one of its charges (no externalRef: matched by the transaction id)."""
    return Checkout(public_id=renewal.public_id, gateway_transaction_id=transaction_id, total_cents=renewal.total_cents)


def pay_charge(client, jp, renewal, transaction_id, postback_id):
    charge = charge_of(renewal, transaction_id)
    responses.upsert(responses.GET, f"{JP}/transactions/{transaction_id}", json=transaction(charge, status="paid", externalRef=None))
    return post_webhook(client, "junglepay", postback(charge, postback_id=postback_id), token=jp.postback_token)


class RefundRecorder:
    """Stands in for the checkout's gateway at the refund door: records each refund asked."""

    def __init__(self, asked):
        self.asked = asked

    def refund(self, transaction_id, amount_cents):
        self.asked.append((transaction_id, amount_cents))
        return None  # "no refund API": the request stays pending for staff


def charge(checkout, status, provider_status, *, amount="total"):
    """What the gateway says of the checkout's charge, as apply_charge takes it (`amount`: the total unless given)."""
    return Charge(
        transaction_id=checkout.gateway_transaction_id or "282",
        status=status,
        provider_status=provider_status,
        amount_cents=checkout.total_cents if amount == "total" else amount,
        external_ref=str(checkout.public_id),
    )
