from django.contrib import messages
from django.contrib.auth import get_user_model, login, views as auth_views
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.utils.http import urlsafe_base64_decode
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods
from django.views.i18n import set_language as django_set_language

from django.conf import settings

from accounts.forms import LoginForm, ResetPasswordForm, SignupForm
from accounts.language import remember_language
from accounts.services import EmailTaken, confirm_email, register_user
from accounts.throttling import is_rate_limited
from accounts.tokens import email_confirmation_token


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
            user = register_user(email=data["email"], password=data["password1"], name=data["name"])
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
