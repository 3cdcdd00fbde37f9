"""`GET /api/me/data` and `POST /api/me/delete` (contract §3, LGPD art. 18)."""

from django.contrib.auth import logout
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from config.throttling import AuthThrottle
from legal import selectors, services
from legal.models import DataRequest

EXPORT_FILENAME = "creatorflix-my-data.json"


class MeDataApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        summary="Download my data",
        description="Everything stored about the user, as one JSON document. The only place the full CPF is shown.",
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request):
        document = selectors.export_user_data(user=request.user)
        # Recorded for the admin's list of data requests (answered at once).
        services.record_data_request(
            kind=DataRequest.Kind.ACCESS, user=request.user, channel=DataRequest.Channel.SELF_SERVICE, completed=True
        )
        response = Response(document)
        response["Content-Disposition"] = f'attachment; filename="{EXPORT_FILENAME}"'
        response["Cache-Control"] = "no-store"
        return response


class MeDeleteApi(APIView):
    permission_classes = [IsAuthenticated]
    throttle_classes = [AuthThrottle]

    class DeleteInput(serializers.Serializer):
        password = serializers.CharField(write_only=True, max_length=128)

    class DeleteOutput(serializers.Serializer):
        status = serializers.CharField()

    @extend_schema(
        summary="Delete my account",
        description=(
            "Confirmed with the password. Ends any subscription, replaces name, e-mail, CPF and phone with anonymous "
            "values everywhere, keeps money records (amounts, dates, gateway ids), logs out. Needs `X-CSRFToken`."
        ),
        request=DeleteInput,
        responses={200: DeleteOutput, 400: OpenApiResponse(description="Wrong password.")},
    )
    def post(self, request):
        data = self.DeleteInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.delete_account(user=request.user, password=data.validated_data["password"])
        logout(request)
        return Response(self.DeleteOutput({"status": "deleted"}).data)
