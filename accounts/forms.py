from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm, UserCreationForm
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.age import require_min_age
from accounts.throttling import clear_login_failures, is_login_blocked, record_login_failure
from config.emails import transactional_email
from config.errors import DomainError


def _birth_date_field(required: bool) -> forms.DateField:
    return forms.DateField(
        label=_("Birth date"),
        required=required,
        input_formats=["%Y-%m-%d", "%d/%m/%Y"],
        widget=forms.DateInput(attrs={"type": "date", "autocomplete": "bday"}, format="%Y-%m-%d"),
        help_text=_("This site is for adults only."),
    )


def _clean_birth_date(value):
    if value is None:
        return value
    try:
        require_min_age(value, today=timezone.localdate())
    except DomainError as exc:
        raise forms.ValidationError(exc.message) from exc
    return value


class BirthDateForm(forms.Form):
    """The age page: asked before locked content of accounts without a confirmed age."""

    birth_date = _birth_date_field(required=True)

    def clean_birth_date(self):
        return _clean_birth_date(self.cleaned_data["birth_date"])


class SignupForm(UserCreationForm):
    birth_date = _birth_date_field(required=False)

    def clean_birth_date(self):
        return _clean_birth_date(self.cleaned_data.get("birth_date"))

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

    def send_mail(self, subject_template_name, email_template_name, context, from_email, to_email, html_email_template_name=None):
        # The same text as Django's, plus the site's HTML layout (config/emails.py) like every other e-mail.
        subject = "".join(render_to_string(subject_template_name, context).splitlines())
        body = render_to_string(email_template_name, context)
        transactional_email(subject=subject, body=body, to=[to_email]).send()


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
