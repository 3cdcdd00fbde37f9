"""
Checkout API (contract §3): process → pix → poll, plus the sandbox's
simulate button. Doors only: validate, call one service, render.

Checkouts are addressed by their uuid (`public_id`); sequential ids are never
exposed. The total is always computed by `billing.services.create_checkout`;
a total sent by the client is not even read.
"""

from functools import wraps

from django.contrib.auth import login
from django.http import HttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.age import require_min_age
from accounts.api import LoginOutput
from accounts.services import keep_set_password_link_valid
from billing import selectors, services
from billing.access import user_has_access
from billing.checkout_status import cached_status, remember_status
from billing.documents import digits_only, is_valid_cpf, normalize_phone
from billing.exceptions import CheckoutNotFound, GuestSignInRefused, InvalidInput
from billing.gateways import GatewayUnavailable, get_active_gateway
from billing.gateways.sandbox import SANDBOX_OUTCOMES, sandbox_allowed
from billing.guest_session import created_here, forget_guest_checkout, remember_guest_checkout
from billing.models import MAX_INSTALLMENTS, CardAttempt, Checkout, PaymentGateway, Plan
from billing.pix import qr_svg
from billing.tracking import MAX_VALUE_LENGTH, TRACKING_KEYS
from billing.webhooks import receive_webhook
from config.client_ip import client_ip
from config.errors import Invalid, NotFound
from config.throttling import (
    CheckoutAddressThrottle,
    CheckoutCardAddressThrottle,
    CheckoutCardThrottle,
    CheckoutCustomerThrottle,
    CheckoutPixAddressThrottle,
    CheckoutPixThrottle,
    CheckoutSimulateThrottle,
)
from integrations.attribution import tracking_for_checkout
from legal import selectors as legal_selectors
from legal.consent import read_consent
from legal.models import LegalDocument

# What the checkout form says about a field left empty or unreadable, in a person's words (DRF's
# defaults read like a machine: "Este campo pode não estar em branco.").
CPF_INVALID = gettext_lazy("This CPF is not valid: check its 11 digits.")
PHONE_INVALID = gettext_lazy("Enter your mobile number with area code (DDD), like (11) 91234-5678.")


def _says(required, invalid=None, **others) -> dict:
    messages = {"required": required, "blank": required, "null": required, **others}
    if invalid is not None:
        messages["invalid"] = invalid
        messages["datetime"] = invalid
    return messages


def _get_checkout(checkout_id, request) -> Checkout:
    """
    A checkout is reached by its unguessable uuid (the buyer may not have an
    account yet). Once it belongs to an account, another logged-in user gets a
    404 for it all the same: ownership is checked, not only the id's secrecy.
    """
    checkout = (
        Checkout.objects.select_related("subscription__plan", "gateway").filter(public_id=checkout_id).first()
    )
    if checkout is None or not _may_see(request.user, checkout.user_id):
        raise CheckoutNotFound(_("Checkout not found."))
    return checkout


def _check_may_see(checkout_id, request) -> None:
    """`_get_checkout`'s check, reading only the owner: for the doors whose service loads the checkout itself."""
    found = Checkout.objects.filter(public_id=checkout_id).values("user_id").first()
    if found is None or not _may_see(request.user, found["user_id"]):
        raise CheckoutNotFound(_("Checkout not found."))


def _may_see(user, owner_id: int | None) -> bool:
    """`owner_id`: the checkout's user_id (from the row, or from its cached status)."""
    if owner_id is None or not user.is_authenticated:
        return True
    return user.pk == owner_id or user.is_staff


def _may_see_details(user, owner_id: int | None) -> bool:
    """
    Whose subscription a checkout paid is the account's business: a logged-out
    holder of an account's checkout id (a forwarded renewal link) learns its
    status and amount only, never the subscription or customer behind it.
    """
    if owner_id is None:
        return True  # a guest checkout: the holder of the id is the buyer
    return user.is_authenticated and (user.pk == owner_id or user.is_staff)


class CheckoutProcessApi(APIView):
    # Per customer, with a per-address ceiling generous enough for a carrier-grade NAT.
    throttle_classes = [CheckoutAddressThrottle, CheckoutCustomerThrottle]

    class CheckoutProcessInput(serializers.Serializer):
        plan_id = serializers.IntegerField(min_value=1)
        payment_method = serializers.ChoiceField(choices=Checkout.Method.choices, default=Checkout.Method.PIX)
        installments = serializers.IntegerField(
            min_value=1, max_value=MAX_INSTALLMENTS, required=False, default=1,
            help_text="Card only: 1 to the plan's max_installments; the total does not change.",
        )
        order_bump_ids = serializers.ListField(child=serializers.IntegerField(min_value=1), required=False, default=list, max_length=20)
        name = serializers.CharField(
            max_length=150,
            error_messages=_says(gettext_lazy("Enter your full name."), max_length=gettext_lazy("Use at most 150 characters for your name.")),
        )
        email = serializers.EmailField(
            max_length=254,
            error_messages=_says(
                gettext_lazy("Enter your e-mail: your access is sent to it."),
                gettext_lazy("Check your e-mail: it should look like name@example.com."),
                max_length=gettext_lazy("Check your e-mail: it should look like name@example.com."),
            ),
        )
        cpf = serializers.CharField(max_length=20, error_messages=_says(gettext_lazy("Enter your CPF."), max_length=CPF_INVALID))
        phone = serializers.CharField(max_length=20, error_messages=_says(gettext_lazy("Enter your mobile number with area code (DDD)."), max_length=PHONE_INVALID))
        coupon = serializers.CharField(max_length=40, required=False, allow_blank=True, default="")
        # A plan's free trial is taken unless the buyer chose to pay now (the answer to `trial_already_used`).
        trial = serializers.BooleanField(required=False, default=True)
        birth_date = serializers.DateField(
            input_formats=["%Y-%m-%d"],
            help_text="YYYY-MM-DD; the buyer must be at least MIN_AGE years old.",
            error_messages=_says(gettext_lazy("Enter your birth date."), gettext_lazy("Enter your birth date.")),
        )
        tracking = serializers.DictField(
            child=serializers.CharField(max_length=MAX_VALUE_LENGTH, allow_blank=True), required=False, default=dict
        )

        def validate_tracking(self, value):
            unknown = sorted(set(value) - set(TRACKING_KEYS))
            if unknown:
                raise serializers.ValidationError(
                    gettext_lazy("Unknown tracking keys: %(keys)s.") % {"keys": ", ".join(unknown)}
                )
            return value

        def validate_name(self, value):
            if len(value.strip()) < 2:
                raise serializers.ValidationError(gettext_lazy("Enter your full name."))
            return value.strip()

        def validate_cpf(self, value):
            if not is_valid_cpf(value):
                raise serializers.ValidationError(CPF_INVALID)
            return digits_only(value)

        def validate_phone(self, value):
            phone = normalize_phone(value)
            if phone is None:
                raise serializers.ValidationError(PHONE_INVALID)
            return phone

        def validate_birth_date(self, value):
            # Said with the other fields' errors, not only once they pass (create_checkout checks it again).
            try:
                require_min_age(value, today=timezone.localdate())
            except Invalid as error:
                raise serializers.ValidationError(error.message, code=error.code) from error
            return value

    class CheckoutProcessOutput(serializers.Serializer):
        checkout_id = serializers.UUIDField(source="public_id")
        total_amount = serializers.IntegerField(source="total_cents", help_text="Cents of BRL, computed by the server.")
        discount_amount = serializers.IntegerField(source="discount_cents", help_text="The coupon's discount, in cents.")
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
                    "coupon": "BEMVINDO10",
                    "tracking": {"utm_source": "instagram", "utm_campaign": "black-friday", "fbclid": "IwAR0abc"},
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
            raise InvalidInput("plan_id", _("This plan is not available."), code="plan_unavailable")
        choice = read_consent(request)
        checkout = services.create_checkout(
            plan=plan,
            customer_name=values["name"],
            customer_email=values["email"],
            customer_document=values["cpf"],
            customer_phone=values["phone"],
            customer_birth_date=values["birth_date"],
            # Submitting the form under the checkout's notice accepts the terms in force (contract §4).
            terms_version=legal_selectors.current_version(kind=LegalDocument.Kind.TERMS),
            order_bump_ids=values["order_bump_ids"],
            payment_method=values["payment_method"],
            installments=values["installments"],
            user=request.user if request.user.is_authenticated else None,
            purpose=Checkout.Purpose.NEW,
            coupon_code=values["coupon"],
            trial=values["trial"],
            tracking=tracking_for_checkout(request, values["tracking"]),
            consent=(choice.analytics, choice.marketing),  # undecided: neither (the banner's default)
        )
        # Nothing to pay (a free trial, a 100% coupon): paid at once, no gateway charge.
        checkout = services.settle_free_checkout(checkout=checkout)
        response = Response(self.CheckoutProcessOutput(checkout).data, status=status.HTTP_201_CREATED)
        if not request.user.is_authenticated:
            # This browser may be signed in to the account the payment creates (CheckoutSignInApi).
            remember_guest_checkout(request, response, checkout.public_id)
        return response


class CheckoutPixApi(APIView):
    # Counted per checkout and apart from new purchases: paying never uses up the right to buy.
    throttle_classes = [CheckoutPixAddressThrottle, CheckoutPixThrottle]

    class CheckoutPixInput(serializers.Serializer):
        checkout_id = serializers.UUIDField()
        # Only for a checkout that lacks them (a renewal of a subscription we never charged);
        # validated by the service like /api/checkout/process validates them.
        cpf = serializers.CharField(max_length=20, required=False, allow_blank=True)
        phone = serializers.CharField(max_length=20, required=False, allow_blank=True)

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
        # Ownership, before any gateway call. A logged-out holder of an account's checkout id (the
        # renewal e-mail's link) may still pay it: the answer is the charge only, no customer data.
        _check_may_see(data.validated_data["checkout_id"], request)
        values = data.validated_data
        checkout = services.issue_pix_charge(
            checkout_id=values["checkout_id"], cpf=values.get("cpf") or None, phone=values.get("phone") or None
        )
        return Response(self.CheckoutPixOutput(checkout).data)


class CheckoutCardApi(APIView):
    """
    Charge the checkout to a card (contract §3): the body carries the hash
    JunglePay's tokenizer made in the buyer's browser, never the card. A
    refusal is a 402 `card_refused` whose message is the bank's reason; the
    checkout stays payable by another card or by PIX.
    """

    throttle_classes = [CheckoutCardAddressThrottle, CheckoutCardThrottle]

    class CheckoutCardInput(serializers.Serializer):
        checkout_id = serializers.UUIDField()
        card_hash = serializers.CharField(max_length=4096, trim_whitespace=True)
        installments = serializers.IntegerField(min_value=1, max_value=MAX_INSTALLMENTS, required=False, default=1)

    class CheckoutCardOutput(serializers.Serializer):
        checkout_id = serializers.UUIDField(source="checkout.public_id")
        transaction_id = serializers.CharField()
        status = serializers.SerializerMethodField()
        card = serializers.SerializerMethodField()
        installments = serializers.IntegerField()

        def get_status(self, attempt) -> str:
            return "paid" if attempt.status == CardAttempt.Status.PAID else "processing"

        def get_card(self, attempt) -> dict:
            return {"brand": attempt.card_brand, "last_digits": attempt.card_last_digits}

    @extend_schema(request=CheckoutCardInput, responses={200: CheckoutCardOutput})
    def post(self, request):
        data = self.CheckoutCardInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        _check_may_see(values["checkout_id"], request)  # ownership, before any gateway call
        attempt = services.charge_card(
            checkout_id=values["checkout_id"],
            card_hash=values["card_hash"],
            installments=values["installments"],
            client_ip=client_ip(request),
        )
        return Response(self.CheckoutCardOutput(attempt).data)


class CheckoutSubscriptionOutput(serializers.Serializer):
    plan = serializers.CharField(source="plan.name")
    status = serializers.CharField()
    start_date = serializers.DateTimeField(allow_null=True)
    end_date = serializers.DateTimeField(allow_null=True)


def _answer_from_cache(request, cached: dict | None) -> dict | None:
    """
    The poll's answer from its cached status (billing/checkout_status.py), or
    None when it takes the database: no entry, a checkout the caller may not
    see (the view answers 404), or a paid one whose subscription is shown.
    """
    if cached is None or not _may_see(request.user, cached["user_id"]):
        return None
    if _may_see_details(request.user, cached["user_id"]) and cached["status"] == Checkout.Status.PAID:
        return None
    # What CheckoutStatusOutput answers when the subscription is not shown.
    fields = ("checkout_id", "status", "total_amount", "paid_at")
    return {**{field: cached[field] for field in fields}, "subscription": None}


class CheckoutStatusApi(APIView):
    """
    Polled by the checkout page until the payment arrives; a cheap read, not
    throttled. Answered from the cached status (billing/checkout_status.py,
    written through by every status change) without a database query, except
    for what the cache does not hold: an entitled caller's paid checkout (its
    subscription), a checkout not cached yet (read, then cached) and one the
    caller may not see (read, then 404).
    """

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
            if not self.context.get("details", False):
                return None
            return CheckoutSubscriptionOutput(checkout.subscription).data

    @classmethod
    def as_view(cls, **initkwargs):
        """
        A launch's polls are answered before DRF's dispatch (authentication,
        content negotiation, the renderer cost as much as the cache read):
        whatever the cached status can answer goes out as the same JSON bytes
        the renderer would write; the rest (no entry, someone else's checkout,
        a paid one with its subscription) goes through the view below.
        """
        api_view = super().as_view(**initkwargs)

        @wraps(api_view)  # keeps .cls and .initkwargs, which the OpenAPI schema reads
        def view(request, checkout_id):
            answer = _answer_from_cache(request, cached_status(checkout_id)) if request.method == "GET" else None
            if answer is None:
                return api_view(request, checkout_id=checkout_id)
            response = HttpResponse(JSONRenderer().render(answer), content_type=JSONRenderer.media_type)
            response["Vary"] = "Accept"
            return response

        return view

    @extend_schema(responses={200: CheckoutStatusOutput})
    def get(self, request, checkout_id):
        # What the cache could answer went out before this (as_view): the database answers the rest.
        return Response(answer_from_database(request, checkout_id))


def answer_from_database(request, checkout_id) -> dict:
    """The poll's answer read from the database (and cached); raises CheckoutNotFound for a checkout the caller may not see."""
    checkout = _get_checkout(checkout_id, request)
    remember_status(checkout)
    details = _may_see_details(request.user, checkout.user_id)
    return CheckoutStatusApi.CheckoutStatusOutput(checkout, context={"details": details}).data


def poll_answer(request, checkout_id) -> dict:
    """The poll's JSON (`GET /api/checkout/<id>`) as a dict, from the cache when it can: the event stream sends the same."""
    return _answer_from_cache(request, cached_status(checkout_id)) or answer_from_database(request, checkout_id)


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
            raise NotFound(_("Payment simulation is only available with the sandbox gateway."))
        _check_may_see(checkout_id, request)
        outcome = data.validated_data["outcome"]
        body = services.simulate_sandbox_event(checkout_id=checkout_id, outcome=outcome)
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


class CheckoutSignInApi(APIView):
    """
    Paid → watching (contract §3): the checkout page, once it sees the
    payment, asks to sign this browser in to the account the payment created.
    Granted only to the browser that created the checkout (its signed cookie), only for an account
    that payment created (billing.selectors.get_account_to_sign_in), once:
    the checkout is then forgotten by that browser. The set-password e-mail
    went out all the same; it is how the buyer signs in anywhere else.
    """

    @extend_schema(request=None, responses={200: LoginOutput})
    def post(self, request, checkout_id):
        user = request.user
        if not user.is_authenticated:
            user = selectors.get_account_to_sign_in(
                checkout_id=checkout_id, created_here=created_here(request, checkout_id), now=timezone.now()
            )
            if user is None:
                raise GuestSignInRefused(_("Sign in with your e-mail and password to see this purchase."))
            last_login = user.last_login
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            keep_set_password_link_valid(user=user, last_login=last_login)
            response = Response(LoginOutput({"id": user.pk, "email": user.email, "name": user.name, "has_access": user_has_access(user)}).data)
            forget_guest_checkout(request, response, checkout_id)  # once
            return response
        if not Checkout.objects.filter(public_id=checkout_id, user=user).exists():
            raise GuestSignInRefused(_("Sign in with your e-mail and password to see this purchase."))
        return Response(LoginOutput({"id": user.pk, "email": user.email, "name": user.name, "has_access": user_has_access(user)}).data)
