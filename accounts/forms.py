from django import forms
from django.contrib.auth import authenticate, get_user_model
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm, UserCreationForm
from django.utils.translation import gettext_lazy as _

from accounts.throttling import clear_login_failures, is_login_blocked, record_login_failure


class SignupForm(UserCreationForm):
    class Meta:
        model = get_user_model()
        fields = ("name", "email")
        labels = {"name": _("Name"), "email": _("E-mail")}

    def clean_email(self):
        email = self.cleaned_data["email"].strip().lower()
        if get_user_model().objects.filter(email__iexact=email).exists():
            raise forms.ValidationError(_("An account with this e-mail already exists."))
        return email


class ResetPasswordForm(PasswordResetForm):
    """
    Django's form skips accounts without a usable password; ours are the
    accounts a payment created (their password is set through an e-mailed
    link). A customer who lost that first e-mail must be able to ask again.
    """

    def get_users(self, email):
        return get_user_model()._default_manager.filter(email__iexact=email, is_active=True)


class ThrottledLoginMixin:
    """Failed logins are counted per IP and per e-mail; past the limit even a right password waits."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": _("E-mail or password is incorrect."),
        "throttled": _("Too many failed attempts. Please wait a few minutes and try again."),
    }

    def clean(self):
        email = (self.cleaned_data.get("username") or "").lower()
        password = self.cleaned_data.get("password")
        if email and is_login_blocked(self.request, email):
            raise forms.ValidationError(self.error_messages["throttled"], code="throttled")
        if email and password:
            self.user_cache = authenticate(self.request, username=email, password=password)
            if self.user_cache is None:
                record_login_failure(self.request, email)
                raise self.get_invalid_login_error()
            self.confirm_login_allowed(self.user_cache)
            clear_login_failures(self.request, email)
        return self.cleaned_data


class LoginForm(ThrottledLoginMixin, AuthenticationForm):
    username = forms.EmailField(label=_("E-mail"), widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"}))


class AdminLoginForm(ThrottledLoginMixin, AdminAuthenticationForm):
    """The admin's login, throttled like the site's (the admin is where money is)."""
