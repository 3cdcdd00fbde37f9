"""Forms of the finance console: money typed in reais, secrets write-only."""

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from billing.models import MAX_INSTALLMENTS, OrderBump, PaymentGateway, Plan
from billing.money import cents_to_decimal, parse_reais


class ReaisField(forms.CharField):
    """Typed as "29,90" (or "R$ 1.299,90"), cleaned to integer cents."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("max_length", 20)
        kwargs.setdefault("help_text", _('In reais, e.g. "29,90".'))
        super().__init__(*args, **kwargs)

    def prepare_value(self, value):
        if isinstance(value, int):
            return f"{cents_to_decimal(value):.2f}".replace(".", ",")
        return value

    def clean(self, value):
        value = super().clean(value)
        if value in ("", None):
            return None
        try:
            cents = parse_reais(value)
        except ValueError as exc:
            raise ValidationError(_('Enter an amount in reais, like "29,90".'), code="invalid") from exc
        if cents < 0:
            raise ValidationError(_("The amount cannot be negative."), code="negative")
        return cents


class BenefitsField(forms.CharField):
    """One benefit per line: `title | subtitle | icon` (subtitle and icon optional)."""

    widget = forms.Textarea(attrs={"rows": 6, "cols": 80})

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault(
            "help_text",
            _("One benefit per line, in display order: title | subtitle | icon. Subtitle and icon are optional."),
        )
        super().__init__(*args, **kwargs)

    def prepare_value(self, value):
        if isinstance(value, list):
            lines = []
            for item in value:
                parts = [item.get("title", ""), item.get("subtitle", ""), item.get("icon", "")]
                while len(parts) > 1 and not parts[-1]:
                    parts.pop()
                lines.append(" | ".join(parts))
            return "\n".join(lines)
        return value

    def clean(self, value):
        value = super().clean(value) or ""
        benefits = []
        for number, line in enumerate(value.splitlines(), start=1):
            if not line.strip():
                continue
            parts = [part.strip() for part in line.split("|")]
            if len(parts) > 3 or not parts[0]:
                raise ValidationError(
                    _("Line %(number)s: write title | subtitle | icon."), code="invalid", params={"number": number}
                )
            parts += [""] * (3 - len(parts))
            benefits.append({"title": parts[0], "subtitle": parts[1], "icon": parts[2]})
        return benefits


class PlanAdminForm(forms.ModelForm):
    price = ReaisField(label=_("price"))
    benefits = BenefitsField(label=_("benefits"))

    class Meta:
        model = Plan
        exclude = ["price_cents"]

    checkout_url = forms.URLField(
        label=_("external checkout URL"),
        required=False,
        assume_scheme="https",
        help_text=_("Marketplace link; empty means our own PIX checkout."),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["price"] = self.instance.price_cents
        if "trial_days" in self.fields:
            self.fields["trial_days"].required = False  # empty: no trial
        if "max_installments" in self.fields:
            self.fields["max_installments"].required = False  # empty: one payment
            self.fields["max_installments"].max_value = MAX_INSTALLMENTS

    def clean_trial_days(self):
        return self.cleaned_data.get("trial_days") or 0

    def clean_max_installments(self):
        value = self.cleaned_data.get("max_installments") or 1
        if value > MAX_INSTALLMENTS:
            raise ValidationError(_("At most %(max)d installments.") % {"max": MAX_INSTALLMENTS})
        return value

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("price") is not None and cleaned["price"] == 0:
            self.add_error("price", _("A plan needs a price."))
        if not cleaned.get("accepts_pix") and not cleaned.get("accepts_card") and not cleaned.get("checkout_url"):
            raise ValidationError(_("Accept PIX, card, or give an external checkout URL."))
        if (cleaned.get("max_installments") or 1) > 1 and not cleaned.get("accepts_card"):
            self.add_error("max_installments", _("Installments are for card payments: accept card, or leave 1."))
        return cleaned

    def save(self, commit=True):
        self.instance.price_cents = self.cleaned_data["price"]
        return super().save(commit=commit)


class OrderBumpAdminForm(forms.ModelForm):
    price = ReaisField(label=_("price"))

    class Meta:
        model = OrderBump
        exclude = ["price_cents"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["price"] = self.instance.price_cents

    def save(self, commit=True):
        self.instance.price_cents = self.cleaned_data["price"]
        return super().save(commit=commit)


class PaymentGatewayAdminForm(forms.ModelForm):
    """The secret is write-only: never rendered back; left blank, the stored one is kept."""

    new_secret_key = forms.CharField(
        label=_("secret key"),
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=_("Write-only. Leave blank to keep the current key."),
    )
    clear_secret_key = forms.BooleanField(label=_("remove the stored secret key"), required=False)

    class Meta:
        model = PaymentGateway
        fields = ["kind", "public_key"]

    def save(self, commit=True):
        if self.cleaned_data.get("clear_secret_key"):
            self.instance.secret_key = ""
        elif self.cleaned_data.get("new_secret_key"):
            self.instance.secret_key = self.cleaned_data["new_secret_key"]
        return super().save(commit=commit)


class ExtendDaysForm(forms.Form):
    days = forms.IntegerField(label=_("days to add"), min_value=1, max_value=3650, initial=7)
