"""`GET /api/me/receipts` (contract §3): the user's confirmed payments, newest first, each with its printable page."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.permissions import IsAuthenticated

from billing.receipts import list_all_receipts


class MyReceiptsApi(ListAPIView):
    permission_classes = [IsAuthenticated]

    class ReceiptOutput(serializers.Serializer):
        checkout_id = serializers.SerializerMethodField(help_text="null for a marketplace payment (no checkout of ours).")
        paid_at = serializers.DateTimeField()
        amount = serializers.IntegerField(source="amount_cents", help_text="Cents of BRL.")
        description = serializers.CharField()
        method = serializers.CharField(help_text='"pix", "card" or "marketplace".')
        card = serializers.DictField(allow_null=True, help_text="{brand, last_digits} of a card payment, else null.")
        installments = serializers.IntegerField()
        transaction_id = serializers.CharField()
        receipt_url = serializers.URLField()

        def get_checkout_id(self, receipt) -> str | None:
            return receipt.checkout_id or None

    serializer_class = ReceiptOutput

    def get_queryset(self):
        # Receipts in the request's language: the user's checkouts and marketplace payments, newest first.
        return list_all_receipts(user=self.request.user)

    @extend_schema(responses={200: ReceiptOutput(many=True)})
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)
