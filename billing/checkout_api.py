"""
Checkout API (contract §3): process → pix → poll, plus the sandbox's
simulate button. Doors only: validate, call one service, render.

Checkouts are addressed by their uuid (`public_id`); sequential ids are never
exposed. The total is always computed by `billing.services.create_checkout`;
a total sent by the client is not even read.
"""

import json
import uuid

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _, gettext_lazy
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from billing import services
from billing.charges import issue_pix_charge
from billing.documents import is_valid_cpf, normalize_phone
from billing.gateways import GatewayUnavailable, get_active_gateway
from billing.gateways.sandbox import SANDBOX_OUTCOMES, sandbox_allowed
from billing.models import Checkout, PaymentGateway, Plan
from billing.pix import qr_svg
from billing.webhooks import receive_webhook
from config.api_errors import DomainError
from config.throttling import (
    CheckoutAddressThrottle,
    CheckoutCustomerThrottle,
    CheckoutPixAddressThrottle,
    CheckoutPixThrottle,
    CheckoutSimulateThrottle,
)


def _get_checkout(checkout_id, request) -> Checkout:
    """
    A checkout is reached by its unguessable uuid (the buyer may not have an
    account yet). Once it belongs to an account, another logged-in user gets a
    404 for it all the same: ownership is checked, not only the id's secrecy.
    """
    checkout = (
        Checkout.objects.select_related("subscription__plan", "gateway").filter(public_id=checkout_id).first()
    )
    if checkout is None or not _may_see(request.user, checkout):
        raise DomainError(_("Checkout not found."), code="not_found", status_code=status.HTTP_404_NOT_FOUND)
    return checkout


def _may_see(user, checkout: Checkout) -> bool:
    if checkout.user_id is None or not user.is_authenticated:
        return True
    return user.pk == checkout.user_id or user.is_staff


class CheckoutProcessApi(APIView):
    # Per customer, with a per-address ceiling generous enough for a carrier-grade NAT.
    throttle_classes = [CheckoutAddressThrottle, CheckoutCustomerThrottle]

    class CheckoutProcessInput(serializers.Serializer):
        plan_id = serializers.IntegerField(min_value=1)
        payment_method = serializers.ChoiceField(choices=Checkout.Method.choices, default=Checkout.Method.PIX)
        order_bump_ids = serializers.ListField(child=serializers.IntegerField(min_value=1), required=False, default=list, max_length=20)
        name = serializers.CharField(max_length=150)
        email = serializers.EmailField(max_length=254)
        cpf = serializers.CharField(max_length=20)
        phone = serializers.CharField(max_length=20)

        def validate_name(self, value):
            if len(value.strip()) < 2:
                raise serializers.ValidationError(gettext_lazy("Enter your full name."))
            return value.strip()

        def validate_cpf(self, value):
            if not is_valid_cpf(value):
                raise serializers.ValidationError(gettext_lazy("Enter a valid CPF."))
            return "".join(ch for ch in value if ch.isdigit())

        def validate_phone(self, value):
            phone = normalize_phone(value)
            if phone is None:
                raise serializers.ValidationError(gettext_lazy("Enter a phone number with area code (DDD)."))
            return phone

    class CheckoutProcessOutput(serializers.Serializer):
        checkout_id = serializers.UUIDField(source="public_id")
        total_amount = serializers.IntegerField(source="total_cents", help_text="Cents of BRL, computed by the server.")
        status = serializers.CharField()

    @extend_schema(
        request=CheckoutProcessInput,
        responses={201: CheckoutProcessOutput},
        examples=[
            OpenApiExample(
                "pix",
                request_only=True,
                value={
                    "plan_id": 1,
                    "payment_method": "pix",
                    "order_bump_ids": [],
                    "name": "Ana Souza",
                    "email": "ana@example.com",
                    "cpf": "529.982.247-25",
                    "phone": "(11) 98765-4321",
                },
            )
        ],
    )
    def post(self, request):
        data = self.CheckoutProcessInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        plan = Plan.objects.filter(pk=values["plan_id"]).first()
        if plan is None:
            message = _("This plan is not available.")
            raise DomainError(message, code="plan_unavailable", fields={"plan_id": [message]})
        checkout = services.create_checkout(
            plan=plan,
            customer_name=values["name"],
            customer_email=values["email"],
            customer_document=values["cpf"],
            customer_phone=values["phone"],
            order_bump_ids=values["order_bump_ids"],
            payment_method=values["payment_method"],
            user=request.user if request.user.is_authenticated else None,
            purpose=Checkout.Purpose.NEW,
        )
        return Response(self.CheckoutProcessOutput(checkout).data, status=status.HTTP_201_CREATED)


class CheckoutPixApi(APIView):
    # Counted per checkout and apart from new purchases: paying never uses up the right to buy.
    throttle_classes = [CheckoutPixAddressThrottle, CheckoutPixThrottle]

    class CheckoutPixInput(serializers.Serializer):
        checkout_id = serializers.UUIDField()

    class CheckoutPixOutput(serializers.Serializer):
        checkout_id = serializers.UUIDField(source="public_id")
        transaction_id = serializers.CharField(source="gateway_transaction_id")
        pix_code = serializers.CharField(help_text="PIX copy-and-paste (BR Code).")
        pix_qr_svg = serializers.SerializerMethodField()
        pix_url = serializers.CharField()
        expires_at = serializers.DateTimeField(source="pix_expires_at", allow_null=True)
        status = serializers.CharField()
        total_amount = serializers.IntegerField(source="total_cents")

        def get_pix_qr_svg(self, checkout) -> str:
            return qr_svg(checkout.pix_code)

    @extend_schema(request=CheckoutPixInput, responses={200: CheckoutPixOutput})
    def post(self, request):
        data = self.CheckoutPixInput(data=request.data)
        data.is_valid(raise_exception=True)
        _get_checkout(data.validated_data["checkout_id"], request)  # ownership, before any gateway call
        checkout = issue_pix_charge(checkout_id=data.validated_data["checkout_id"])
        return Response(self.CheckoutPixOutput(checkout).data)


class CheckoutSubscriptionOutput(serializers.Serializer):
    plan = serializers.CharField(source="plan.name")
    status = serializers.CharField()
    start_date = serializers.DateTimeField(allow_null=True)
    end_date = serializers.DateTimeField(allow_null=True)


class CheckoutStatusApi(APIView):
    """Polled by the checkout page (every ~2 s) until the payment arrives; a cheap read, not throttled."""

    class CheckoutStatusOutput(serializers.Serializer):
        checkout_id = serializers.UUIDField(source="public_id")
        status = serializers.CharField()
        total_amount = serializers.IntegerField(source="total_cents")
        paid_at = serializers.DateTimeField(allow_null=True)
        subscription = serializers.SerializerMethodField()

        @extend_schema_field(CheckoutSubscriptionOutput(allow_null=True))
        def get_subscription(self, checkout):
            # Only once paid: a pending subscription is not something to show the buyer.
            if checkout.status != Checkout.Status.PAID or checkout.subscription is None:
                return None
            return CheckoutSubscriptionOutput(checkout.subscription).data

    @extend_schema(responses={200: CheckoutStatusOutput})
    def get(self, request, checkout_id):
        checkout = _get_checkout(checkout_id, request)
        return Response(self.CheckoutStatusOutput(checkout).data)


class CheckoutSimulateApi(APIView):
    """
    Sandbox only: the checkout page's "simulate payment / refused / expired /
    refund" buttons. The sandbox's side of the charge is changed, then a
    postback shaped like JunglePay's is delivered through the very webhook
    path a real provider uses (stored as a WebhookEvent, then processed).
    """

    throttle_classes = [CheckoutSimulateThrottle]

    class CheckoutSimulateInput(serializers.Serializer):
        outcome = serializers.ChoiceField(choices=sorted(SANDBOX_OUTCOMES))

    class CheckoutSimulateOutput(serializers.Serializer):
        checkout_id = serializers.UUIDField()
        status = serializers.CharField()
        webhook_status = serializers.IntegerField()
        webhook = serializers.DictField()

    @extend_schema(request=CheckoutSimulateInput, responses={200: CheckoutSimulateOutput})
    def post(self, request, checkout_id):
        data = self.CheckoutSimulateInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            gateway = get_active_gateway()
        except GatewayUnavailable:
            gateway = None
        if gateway is None or gateway.kind != PaymentGateway.Kind.SANDBOX or not gateway.config.is_active or not sandbox_allowed():
            raise DomainError(
                _("Payment simulation is only available with the sandbox gateway."),
                code="not_found",
                status_code=status.HTTP_404_NOT_FOUND,
            )
        _get_checkout(checkout_id, request)
        outcome = data.validated_data["outcome"]
        body = simulate_sandbox_event(checkout_id=checkout_id, outcome=outcome)
        result = receive_webhook(
            provider=PaymentGateway.Kind.SANDBOX,
            token=gateway.config.postback_token,
            body=body,
            headers={"Content-Type": "application/json", "X-Sandbox-Simulation": outcome},
        )
        checkout = _get_checkout(checkout_id, request)
        return Response(
            self.CheckoutSimulateOutput(
                {"checkout_id": checkout.public_id, "status": checkout.status, "webhook_status": result.status_code, "webhook": result.body}
            ).data
        )


@transaction.atomic
def simulate_sandbox_event(*, checkout_id, outcome: str) -> bytes:
    """Change the sandbox's side of the charge and return the postback body it would send."""
    checkout = Checkout.objects.select_for_update().filter(public_id=checkout_id, gateway__kind=PaymentGateway.Kind.SANDBOX).first()
    if checkout is None or not checkout.gateway_transaction_id or not checkout.gateway_response:
        raise DomainError(
            _("Create the PIX charge first."), code="no_charge", status_code=status.HTTP_409_CONFLICT
        )
    provider_status = SANDBOX_OUTCOMES[outcome]
    current = checkout.gateway_response.get("status")
    if provider_status == "refunded" and current != "paid":
        raise DomainError(_("Only a paid charge can be refunded."), code="not_paid", status_code=status.HTTP_409_CONFLICT)
    if provider_status in ("paid", "refused", "expired") and current not in ("waiting_payment", provider_status):
        raise DomainError(_("This charge is no longer waiting for payment."), code="not_pending", status_code=status.HTTP_409_CONFLICT)
    transaction_data = dict(checkout.gateway_response)
    transaction_data["status"] = provider_status
    if provider_status == "paid":
        transaction_data["paidAt"] = timezone.now().isoformat()
    checkout.gateway_response = transaction_data
    checkout.save(update_fields=["gateway_response", "updated_at"])
    postback = {
        "id": f"sbx-{uuid.uuid4().hex}",
        "type": "transaction",
        "objectId": str(checkout.gateway_transaction_id),
        "url": "",
        "data": transaction_data,
    }
    return json.dumps(postback).encode()
