"""
The plans and "my subscription" endpoints (contract §3). Each view validates
its input, calls one selector or service and renders an output serializer.
Checkout and webhook endpoints live with the payments code.
"""

from django.http import JsonResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.views.decorators.csrf import ensure_csrf_cookie
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import generics, serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from billing import refunds, selectors, services
from billing.models import Plan, Subscription
from config.errors import NotFound

# ---------------------------------------------------------------------------
# Output serializers (names unique project-wide: drf-spectacular components)
# ---------------------------------------------------------------------------


class PlanBenefitOutput(serializers.Serializer):
    title = serializers.CharField()
    subtitle = serializers.CharField(required=False, allow_blank=True)
    icon = serializers.CharField(required=False, allow_blank=True)


class PlanListOutput(serializers.ModelSerializer):
    price = serializers.IntegerField(source="price_cents", help_text="Price in cents of BRL.")
    price_display = serializers.CharField()
    benefits = PlanBenefitOutput(many=True)

    class Meta:
        model = Plan
        fields = [
            "id", "name", "price", "price_display", "duration_days", "trial_days", "benefits", "cta_text",
            "accepts_pix", "accepts_card", "max_installments", "checkout_url", "card_style",
        ]


class SubscriptionPlanOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    price = serializers.IntegerField(source="price_cents", help_text="Price in cents of BRL.")
    price_display = serializers.CharField()
    duration_days = serializers.IntegerField()


class RenewalCheckoutOutput(serializers.Serializer):
    checkout_id = serializers.UUIDField(source="public_id")
    total_amount = serializers.IntegerField(source="total_cents", help_text="In cents of BRL.")
    total_display = serializers.CharField()
    status = serializers.CharField()
    created_at = serializers.DateTimeField()


class SavedCardOutput(serializers.Serializer):
    brand = serializers.CharField(source="card_brand")
    last_digits = serializers.CharField(source="card_last_digits")
    exp_month = serializers.IntegerField(source="card_exp_month", allow_null=True)
    exp_year = serializers.IntegerField(source="card_exp_year", allow_null=True)


class MySubscriptionOutput(serializers.Serializer):
    id = serializers.IntegerField()
    plan = SubscriptionPlanOutput()
    status = serializers.ChoiceField(choices=Subscription.Status.choices)
    start_date = serializers.DateTimeField(allow_null=True)
    end_date = serializers.DateTimeField(allow_null=True)
    cancel_at_period_end = serializers.BooleanField()
    next_plan = SubscriptionPlanOutput(allow_null=True, help_text="A downgrade scheduled for the next renewal.")
    renewal_checkout = RenewalCheckoutOutput(allow_null=True, help_text="The open renewal charge, if one was issued.")
    days_left = serializers.IntegerField()
    has_access = serializers.BooleanField()
    last_reason = serializers.ChoiceField(choices=Subscription.Reason.choices)
    payment_method = serializers.ChoiceField(choices=["pix", "card", "marketplace"], help_text="How the last payment was made.")
    card = SavedCardOutput(allow_null=True, help_text="The card saved for automatic renewals (contract §8).")
    auto_renew = serializers.BooleanField(help_text="True while the saved card will be charged at end_date.")


class PlanChangeCheckoutOutput(serializers.Serializer):
    checkout_id = serializers.UUIDField(source="public_id")
    plan_price = serializers.IntegerField(source="plan_price_cents")
    credit_amount = serializers.IntegerField(source="credit_cents", help_text="Unused value of the current period, in cents.")
    total_amount = serializers.IntegerField(source="total_cents", help_text="Charged now, in cents.")
    total_display = serializers.CharField()
    status = serializers.CharField()


class PlanChangeOutput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["upgrade", "downgrade", "unchanged"])
    subscription = MySubscriptionOutput()
    checkout = PlanChangeCheckoutOutput(allow_null=True, help_text="For an upgrade: the charge to pay now.")


def _subscription_data(subscription: Subscription) -> dict:
    now = timezone.now()
    return MySubscriptionOutput(
        {
            "id": subscription.pk,
            "plan": subscription.plan,
            "status": subscription.status,
            "start_date": subscription.start_date,
            "end_date": subscription.end_date,
            "cancel_at_period_end": subscription.cancel_at_period_end,
            "next_plan": subscription.next_plan,
            "renewal_checkout": selectors.get_open_renewal(subscription=subscription),
            "days_left": subscription.days_left(now),
            "has_access": Subscription.objects.granting_access(now).filter(pk=subscription.pk).exists(),
            "last_reason": subscription.last_reason,
            "payment_method": selectors.get_payment_method(subscription=subscription),
            "card": subscription if subscription.has_saved_card else None,
            "auto_renew": subscription.auto_renew,
        }
    ).data


def _current_live_subscription(user) -> Subscription:
    subscription = selectors.get_live_subscription(user=user)
    if subscription is None:
        raise NotFound(_("You have no active subscription."), code="no_subscription")
    return subscription


_PLAN_EXAMPLE = {
    "id": 1, "name": "Mensal", "price": 2990, "price_display": "R$ 29,90", "duration_days": 30,
}
_SUBSCRIPTION_EXAMPLE = {
    "id": 42,
    "plan": _PLAN_EXAMPLE,
    "status": "active",
    "start_date": "2026-11-01T10:00:00-03:00",
    "end_date": "2026-12-01T10:00:00-03:00",
    "cancel_at_period_end": False,
    "next_plan": None,
    "renewal_checkout": {
        "checkout_id": "3f2b8c1e-2a4d-4c55-9a51-7c1d7f0e9b10", "total_amount": 2990, "total_display": "R$ 29,90",
        "status": "pending", "created_at": "2026-11-28T10:05:00-03:00",
    },
    "days_left": 9,
    "has_access": True,
    "last_reason": "paid",
}
_NO_SUBSCRIPTION_ERROR = OpenApiExample(
    "no subscription",
    value={"error": {"code": "no_subscription", "message": "Você não tem uma assinatura ativa.", "fields": {}}},
    response_only=True,
    status_codes=["404"],
)

# ---------------------------------------------------------------------------
# Views
# ---------------------------------------------------------------------------


@method_decorator(ensure_csrf_cookie, name="get")
class PlanListApi(generics.ListAPIView):
    """Active plans, in display order (contract §3)."""

    serializer_class = PlanListOutput
    queryset = Plan.objects.none()  # for the schema; get_queryset does the work

    def get_queryset(self):
        return selectors.list_active_plans()

    @extend_schema(
        summary="List the plans on sale",
        examples=[
            OpenApiExample(
                "plans",
                value={
                    "count": 1, "next": None, "previous": None,
                    "results": [{
                        **_PLAN_EXAMPLE,
                        "benefits": [{"title": "Acesso total", "subtitle": "Todos os criadores", "icon": "star"}],
                        "cta_text": "Assinar agora", "accepts_pix": True, "accepts_card": False,
                        "checkout_url": "", "card_style": "default",
                    }],
                },
                response_only=True,
            )
        ],
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


@method_decorator(ensure_csrf_cookie, name="get")
class MySubscriptionApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        summary="My current subscription",
        description="The live subscription (or one waiting for its first payment); the JSON `null` when there is none.",
        responses={200: OpenApiResponse(MySubscriptionOutput, description="The subscription, or null.")},
        examples=[
            OpenApiExample("subscribed", value=_SUBSCRIPTION_EXAMPLE, response_only=True),
            OpenApiExample("none", value=None, response_only=True),
        ],
    )
    def get(self, request):
        subscription = selectors.get_current_subscription(user=request.user)
        if subscription is None:
            # DRF's JSONRenderer renders None as an empty body; the contract says the JSON `null`.
            return JsonResponse(None, safe=False)
        return Response(_subscription_data(subscription))


class MyCardRemoveApi(APIView):
    """Forget the saved card (contract §3): later renewals are PIX, issued and e-mailed as before."""

    permission_classes = [IsAuthenticated]

    class CardRemoveOutput(serializers.Serializer):
        card = serializers.JSONField(allow_null=True)
        auto_renew = serializers.BooleanField()

    @extend_schema(summary="Remove the saved card", request=None, responses={200: CardRemoveOutput})
    def post(self, request):
        services.remove_saved_card(user=request.user)
        return Response(self.CardRemoveOutput({"card": None, "auto_renew": False}).data)


class MySubscriptionCancelApi(APIView):
    permission_classes = [IsAuthenticated]

    class CancelInput(serializers.Serializer):
        reason = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")

    @extend_schema(
        summary="Cancel at the end of the period",
        description="Access stays until `end_date`; no renewal is charged. Needs the `X-CSRFToken` header.",
        request=CancelInput,
        responses={200: MySubscriptionOutput, 404: OpenApiResponse(description="No active subscription.")},
        examples=[
            OpenApiExample("with a reason", value={"reason": "Vou pausar por um tempo"}, request_only=True),
            OpenApiExample(
                "canceled",
                value={**_SUBSCRIPTION_EXAMPLE, "cancel_at_period_end": True, "renewal_checkout": None, "last_reason": "canceled_by_user"},
                response_only=True,
                status_codes=["200"],
            ),
            _NO_SUBSCRIPTION_ERROR,
        ],
    )
    def post(self, request):
        data = self.CancelInput(data=request.data)
        data.is_valid(raise_exception=True)
        subscription = services.cancel_subscription(
            subscription=_current_live_subscription(request.user), reason=data.validated_data["reason"]
        )
        return Response(_subscription_data(selectors.get_current_subscription(user=request.user) or subscription))


class MySubscriptionChangePlanApi(APIView):
    permission_classes = [IsAuthenticated]

    class ChangePlanInput(serializers.Serializer):
        plan_id = serializers.IntegerField()

    @extend_schema(
        summary="Change plan",
        description=(
            "A dearer plan is an upgrade: a checkout for the new price minus the unused value of the current "
            "period is returned, to pay now (its PIX is created by `POST /api/checkout/pix`); paying it starts a "
            "new period on the new plan. A cheaper plan is a downgrade, applied at the next renewal. "
            "Needs the `X-CSRFToken` header."
        ),
        request=ChangePlanInput,
        responses={200: PlanChangeOutput, 404: OpenApiResponse(description="No active subscription, or no such plan.")},
        examples=[
            OpenApiExample("request", value={"plan_id": 2}, request_only=True),
            OpenApiExample(
                "upgrade",
                value={
                    "kind": "upgrade",
                    "subscription": _SUBSCRIPTION_EXAMPLE,
                    "checkout": {
                        "checkout_id": "9c8e6a4f-1b2d-4e3f-8a7b-6c5d4e3f2a1b", "plan_price": 7990, "credit_amount": 1993,
                        "total_amount": 5997, "total_display": "R$ 59,97", "status": "pending",
                    },
                },
                response_only=True,
                status_codes=["200"],
            ),
            OpenApiExample(
                "downgrade",
                value={"kind": "downgrade", "subscription": {**_SUBSCRIPTION_EXAMPLE, "next_plan": _PLAN_EXAMPLE}, "checkout": None},
                response_only=True,
                status_codes=["200"],
            ),
            _NO_SUBSCRIPTION_ERROR,
        ],
    )
    def post(self, request):
        data = self.ChangePlanInput(data=request.data)
        data.is_valid(raise_exception=True)
        subscription = _current_live_subscription(request.user)
        plan = get_object_or_404(Plan, pk=data.validated_data["plan_id"], is_active=True)
        change = services.change_plan(subscription=subscription, plan=plan)
        subscription = Subscription.objects.select_related("plan", "next_plan").get(pk=change.subscription.pk)
        return Response(
            {
                "kind": change.kind,
                "subscription": _subscription_data(subscription),
                "checkout": PlanChangeCheckoutOutput(change.checkout).data if change.checkout else None,
            }
        )


class MySubscriptionWithdrawApi(APIView):
    permission_classes = [IsAuthenticated]

    class WithdrawOutput(serializers.Serializer):
        status = serializers.ChoiceField(choices=["refunded", "refund_pending"])
        amount = serializers.IntegerField(help_text="The full amount paid for the subscription, in cents of BRL.")

    @extend_schema(
        summary="Withdraw (CDC art. 49)",
        description=(
            "Within `WITHDRAWAL_DAYS` of the subscription's first payment: access ends at once and everything paid "
            "for it is refunded through the gateway (`refunded`), or queued for staff where the gateway has no "
            "refund API (`refund_pending`). After the window: 409 `withdrawal_window_closed`, with `closed_at`. "
            "Needs the `X-CSRFToken` header."
        ),
        request=None,
        responses={200: WithdrawOutput, 404: OpenApiResponse(description="No active subscription."), 409: OpenApiResponse(description="The window has closed.")},
        examples=[
            OpenApiExample("refunded", value={"status": "refunded", "amount": 3980}, response_only=True, status_codes=["200"]),
            OpenApiExample(
                "window closed",
                value={"error": {"code": "withdrawal_window_closed", "message": "O prazo de 7 dias para desistir terminou em 08/11/2026 10:00.", "fields": {"closed_at": ["2026-11-08T10:00:00-03:00"]}}},
                response_only=True,
                status_codes=["409"],
            ),
            _NO_SUBSCRIPTION_ERROR,
        ],
    )
    def post(self, request):
        withdrawal = refunds.withdraw(subscription=_current_live_subscription(request.user))
        return Response(self.WithdrawOutput({"status": withdrawal.status, "amount": withdrawal.amount_cents}).data)
