from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.http import urlsafe_base64_decode
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods
from django.views.i18n import set_language as django_set_language

from accounts.age import DECLARATION, PROVIDERS, SandboxAgeProvider, provider_for
from accounts.age import policy as age_policy
from accounts.forms import BirthDateForm, LoginForm, ResetPasswordForm, SignupForm
from accounts.gate import SESSION_KEY, safe_next
from accounts.language import remember_language
from accounts.models import AgeVerification
from accounts.services import (
    EmailTaken,
    confirm_email,
    declare_birth_date,
    finish_age_verification,
    register_user,
    start_age_verification,
)
from accounts.throttling import is_rate_limited
from accounts.tokens import email_confirmation_token
from config.sandbox import sandbox_allowed


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True

    def form_valid(self, form):
        response = super().form_valid(form)
        messages.success(self.request, _("Welcome back!"))
        return response


class LogoutView(auth_views.LogoutView):
    def post(self, request, *args, **kwargs):
        response = super().post(request, *args, **kwargs)
        messages.info(request, _("You have been logged out."))
        return response


@sensitive_post_parameters("password1", "password2")
@require_http_methods(["GET", "POST"])
def signup(request):
    if request.user.is_authenticated:
        return redirect("/")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and is_rate_limited(
        request, scope="signup", limit=settings.SIGNUP_RATE_LIMIT, window=settings.SIGNUP_RATE_WINDOW
    ):
        form.add_error(None, _("Too many sign-ups from your network. Please wait a few minutes and try again."))
        return render(request, "accounts/signup.html", {"form": form}, status=429)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            user = register_user(
                email=data["email"], password=data["password1"], name=data["name"], birth_date=data.get("birth_date")
            )
        except EmailTaken as exc:  # a concurrent sign-up with the same e-mail won
            form.add_error("email", str(exc))
            return render(request, "accounts/signup.html", {"form": form})
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, _("Welcome! Your account has been created. We sent you a link to confirm your e-mail."))
        return redirect(request.GET.get("next") or "/")
    return render(request, "accounts/signup.html", {"form": form})


@require_http_methods(["GET"])
def confirm_email_view(request, uidb64, token):
    """The link of the confirmation e-mail: proves the mailbox, then hands over waiting guest payments."""
    try:
        user = get_user_model()._default_manager.get(pk=urlsafe_base64_decode(uidb64).decode())
    except (TypeError, ValueError, OverflowError, get_user_model().DoesNotExist):
        user = None
    if user is None or not email_confirmation_token.check_token(user, token):
        if user is not None and user.email_confirmed_at is not None:
            messages.info(request, _("Your e-mail is already confirmed."))
            return redirect("/")
        messages.error(request, _("This confirmation link is invalid or has expired."))
        return redirect("/")
    confirm_email(user=user)
    messages.success(request, _("Thank you! Your e-mail is confirmed."))
    return redirect("/")


@require_http_methods(["POST"])
def set_language(request):
    """Django's language switch, and a logged-in customer's choice kept for their e-mails."""
    response = django_set_language(request)
    remember_language(request.user, request.POST.get("language"))
    return response


class PasswordResetView(auth_views.PasswordResetView):
    template_name = "accounts/password_reset.html"
    form_class = ResetPasswordForm
    email_template_name = "accounts/email/password_reset.txt"
    subject_template_name = "accounts/email/password_reset_subject.txt"
    success_url = reverse_lazy("accounts:password_reset_done")


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "accounts/password_reset_done.html"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "accounts/password_reset_confirm.html"
    success_url = reverse_lazy("accounts:password_reset_complete")

    def form_valid(self, form):
        response = super().form_valid(form)
        # The link came by e-mail: setting a password through it proves the mailbox.
        confirm_email(user=form.user)
        return response


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "accounts/password_reset_complete.html"


# ---------------------------------------------------------------------------
# Age assurance: the 18+ gate, the age page, the provider's round trip
# ---------------------------------------------------------------------------


@require_http_methods(["POST"])
def age_gate_confirm(request):
    """The gate's "I am 18 or older": remembered for the session."""
    request.session[SESSION_KEY] = True
    return redirect(safe_next(request, request.POST.get("next")))


@login_required
@require_http_methods(["GET", "POST"])
def age_page(request):
    """Asks the birth date (declaration), then, under a provider's policy, sends the person to the provider."""
    user = request.user
    next_url = safe_next(request, request.POST.get("next") or request.GET.get("next"), default=reverse("billing:account"))
    if user.age_confirmed_at is not None:
        return redirect(next_url)
    form = BirthDateForm(request.POST or None) if user.birth_date is None else None
    if request.method == "POST":
        if form is not None:
            if not form.is_valid():
                return render(request, "accounts/age.html", {"form": form, "next": next_url}, status=400)
            user = declare_birth_date(user=user, birth_date=form.cleaned_data["birth_date"])
        if user.age_confirmed_at is not None:
            messages.success(request, _("Thank you. Your age is confirmed."))
            return redirect(next_url)
        _verification, url = start_age_verification(user=user, return_url=next_url)
        request.session["age_next"] = next_url
        return redirect(url)
    return render(request, "accounts/age.html", {"form": form, "next": next_url, "uses_provider": age_policy() != DECLARATION})


@login_required
@require_http_methods(["GET"])
def age_sandbox_provider(request, reference):
    """The sandbox provider's "verification page": pass or fail on demand (only when AGE_VERIFICATION=sandbox)."""
    if age_policy() != SandboxAgeProvider.name or not sandbox_allowed():
        raise Http404
    verification = get_object_or_404(AgeVerification, reference=reference, user=request.user, provider=SandboxAgeProvider.name)
    return render(request, "accounts/age_sandbox.html", {"verification": verification})


@login_required
@require_http_methods(["POST"])
def age_callback(request, provider):
    """Where a provider returns the person with the result."""
    if provider not in PROVIDERS or provider != age_policy():
        raise Http404
    if provider == SandboxAgeProvider.name and not sandbox_allowed():
        raise Http404  # accounts.E003: a production site never takes the sandbox's word
    reference, passed = provider_for(provider).parse_callback(request)
    verification = finish_age_verification(user=request.user, provider=provider, reference=reference, passed=passed)
    if verification is None:
        raise Http404  # no check of this user's: another account's reference finishes nothing
    if verification.status == AgeVerification.Status.PASSED:
        messages.success(request, _("Thank you. Your age is confirmed."))
        return redirect(safe_next(request, request.session.pop("age_next", None), default=reverse("billing:account")))
    messages.error(request, _("Your age could not be confirmed, so locked content stays locked."))
    return redirect("accounts:age")
