"""
The HTTP doors of the payment webhooks. Everything that matters happens in
`billing.webhooks.receive_webhook` (verify → store → process); these views hand it the raw bytes (DRF
never parses the body), the `?token=` and a few headers.
"""

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.webhooks import authenticate, receive_webhook
from config.api_errors import error_body
from config.throttling import UnauthenticatedWebhookThrottle


class _WebhookApi(APIView):
    provider = ""
    # Providers authenticate with the token in the URL; no session, no CSRF, no parsing by DRF.
    authentication_classes = []
    permission_classes = [AllowAny]
    # Only requests that fail the token check are throttled: an authenticated body is always stored.
    throttle_classes = [UnauthenticatedWebhookThrottle]
    parser_classes = []

    gateway_config = None

    def authenticates(self, request) -> bool:
        # Asked by the throttle before the handler; the answer is handed on to receive_webhook.
        self.gateway_config = authenticate(provider=self.provider, token=request.query_params.get("token", ""))
        return self.gateway_config is not None

    @extend_schema(
        request={"application/json": OpenApiTypes.OBJECT},
        parameters=[OpenApiParameter("token", str, OpenApiParameter.QUERY, required=True, description="The gateway's postback token.")],
        responses={200: OpenApiTypes.OBJECT, 400: OpenApiTypes.OBJECT, 401: OpenApiTypes.OBJECT, 413: OpenApiTypes.OBJECT},
    )
    def post(self, request, *args, **kwargs):
        try:
            content_length = int(request.META.get("CONTENT_LENGTH") or 0) or None
        except ValueError:
            content_length = None
        if content_length and content_length > settings.WEBHOOK_MAX_BODY_BYTES:
            # Refused before the body is read.
            return Response(error_body("payload_too_large", "Body too large."), status=413)
        try:
            body = request._request.body
        except RequestDataTooBig:
            return Response(error_body("payload_too_large", "Body too large."), status=413)
        headers = {key: value for key, value in request.headers.items()}
        result = receive_webhook(
            provider=self.provider,
            token=request.query_params.get("token", ""),
            body=body,
            headers=headers,
            content_length=content_length,
            authenticated=self.gateway_config,
        )
        return Response(result.body, status=result.status_code)


class JunglePayWebhookApi(_WebhookApi):
    provider = "junglepay"


class DiasWebhookApi(_WebhookApi):
    provider = "dias"


class SandboxWebhookApi(_WebhookApi):
    provider = "sandbox"
