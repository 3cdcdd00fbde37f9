"""Offers API (contract §3): the checkout page's live coupon check. A door: validate, call one service, render."""

from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from billing import services
from billing.exceptions import InvalidInput
from billing.models import Plan
from config.throttling import CouponCheckThrottle


class CouponCheckApi(APIView):
    """`GET /api/coupons/<code>?plan_id=N`: does the coupon apply to that plan now, and the total it gives."""

    throttle_classes = [CouponCheckThrottle]

    class CouponCheckInput(serializers.Serializer):
        plan_id = serializers.IntegerField(min_value=1)
        email = serializers.EmailField(required=False, allow_blank=True)

    class CouponCheckOutput(serializers.Serializer):
        code = serializers.CharField(source="coupon.code")
        kind = serializers.CharField(source="coupon.kind")
        value = serializers.IntegerField(source="coupon.value", help_text="Percent, or cents of BRL for an amount.")
        discount_amount = serializers.IntegerField(source="discount_cents", help_text="Cents of BRL, for that plan.")
        total_amount = serializers.IntegerField(source="total_cents", help_text="The plan's price less the discount, in cents.")

    @extend_schema(
        parameters=[OpenApiParameter("plan_id", int, required=True), OpenApiParameter("email", str, required=False)],
        responses={200: CouponCheckOutput},
    )
    def get(self, request, code):
        data = self.CouponCheckInput(data=request.query_params)
        data.is_valid(raise_exception=True)
        plan = Plan.objects.filter(pk=data.validated_data["plan_id"], is_active=True).first()
        if plan is None:
            raise InvalidInput("plan_id", _("This plan is not available."), code="plan_unavailable")
        user = request.user if request.user.is_authenticated else None
        quote = services.quote_coupon(code=code, plan=plan, email=data.validated_data.get("email", ""), user=user)
        return Response(self.CouponCheckOutput(quote).data)
