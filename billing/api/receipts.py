"""`GET /api/me/receipts` (contract §3): the user's confirmed payments, newest first, each with its printable page."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.permissions import IsAuthenticated

from billing.receipts import build_receipt, list_receipts


class MyReceiptsApi(ListAPIView):
    permission_classes = [IsAuthenticated]

    class ReceiptOutput(serializers.Serializer):
        checkout_id = serializers.CharField()
        paid_at = serializers.DateTimeField()
        amount = serializers.IntegerField(source="amount_cents", help_text="Cents of BRL.")
        description = serializers.CharField()
        method = serializers.CharField(help_text='"pix", "card" or "marketplace".')
        card = serializers.DictField(allow_null=True, help_text="{brand, last_digits} of a card payment, else null.")
        installments = serializers.IntegerField()
        transaction_id = serializers.CharField()
        receipt_url = serializers.URLField()

    serializer_class = ReceiptOutput

    def get_queryset(self):
        return list_receipts(user=self.request.user)

    @extend_schema(responses={200: ReceiptOutput(many=True)})
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_serializer(self, instance=None, *args, **kwargs):
        # The rows are checkouts; what is shown is each one's receipt, in the request's language.
        if instance is not None:
            instance = [build_receipt(checkout) for checkout in instance] if kwargs.get("many") else build_receipt(instance)
        return super().get_serializer(instance, *args, **kwargs)
