from django.contrib.auth import authenticate, login, logout
from django.contrib.auth.password_validation import password_validators_help_texts
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.services import register_user
from accounts.throttling import clear_login_failures, is_login_blocked, record_login_failure

# The one import of billing in accounts (an exception in pyproject's import contracts): the login answer
# says whether the user may see paid content (docs/contract.md), a rule billing owns.
from billing.access import user_has_access
from config.errors import DomainError, TooManyRequests
from config.throttling import AuthThrottle


def require_csrf_token(request) -> None:
    """
    Login CSRF: a page on another site must never sign the visitor's browser
    into an account of the attacker's (they would then pay, or type their
    data, into it). DRF checks CSRF only for requests already logged in, so
    the doors that log in ask for the token themselves: the same check
    (Django's `csrftoken` cookie and the `X-CSRFToken` header, set by any GET
    of the API), made after the throttle so a flood is still counted.
    """
    SessionAuthentication().enforce_csrf(request)


class UserOutput(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField()
    name = serializers.CharField()


class LoginOutput(UserOutput):
    has_access = serializers.BooleanField()


class AuthRegisterApi(APIView):
    throttle_classes = [AuthThrottle]

    class RegisterInput(serializers.Serializer):
        email = serializers.EmailField(max_length=254)
        password = serializers.CharField(write_only=True, max_length=128, help_text=" ".join(password_validators_help_texts()))
        name = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")
        birth_date = serializers.DateField(
            input_formats=["%Y-%m-%d"], required=False, default=None,
            help_text="YYYY-MM-DD; under MIN_AGE the sign-up is refused. Without it, it is asked before locked content.",
        )

    @extend_schema(
        request=RegisterInput,
        responses={201: UserOutput},
        examples=[OpenApiExample("register", value={"email": "ana@example.com", "password": "s3nha-forte-123", "name": "Ana"}, request_only=True)],
    )
    def post(self, request):
        require_csrf_token(request)
        data = self.RegisterInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            user = register_user(**data.validated_data)
        except ValidationError as exc:  # the password validators' verdict
            raise DomainError(exc.messages[0], code="weak_password", fields={"password": exc.messages}) from exc
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return Response(UserOutput(user).data, status=status.HTTP_201_CREATED)


class AuthLoginApi(APIView):
    throttle_classes = [AuthThrottle]

    class LoginInput(serializers.Serializer):
        email = serializers.EmailField(max_length=254)
        password = serializers.CharField(write_only=True, max_length=128)

    @extend_schema(request=LoginInput, responses={200: LoginOutput})
    def post(self, request):
        require_csrf_token(request)
        data = self.LoginInput(data=request.data)
        data.is_valid(raise_exception=True)
        email = data.validated_data["email"].lower()
        if is_login_blocked(request, email):
            raise TooManyRequests(_("Too many failed attempts. Please wait a few minutes and try again."))
        user = authenticate(request, username=email, password=data.validated_data["password"])
        if user is None:
            record_login_failure(request, email)
            # Same answer whether or not the e-mail exists.
            raise DomainError(_("E-mail or password is incorrect."), code="invalid_credentials")
        clear_login_failures(request, email)
        login(request, user)
        return Response(LoginOutput({"id": user.pk, "email": user.email, "name": user.name, "has_access": user_has_access(user)}).data)


class AuthLogoutApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={204: None})
    def post(self, request):
        logout(request)
        return Response(status=status.HTTP_204_NO_CONTENT)
