"""Coupons in the back office (contract §5): percent or amount (typed in reais), plans, dates, uses, new only."""

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from billing.admin.forms import ReaisField
from billing.models import Coupon


class CouponAdminForm(forms.ModelForm):
    percent = forms.IntegerField(label=_("percent"), required=False, min_value=1, max_value=100)
    amount = ReaisField(label=_("amount"), required=False)

    class Meta:
        model = Coupon
        fields = ["code", "kind", "plans", "starts_at", "ends_at", "max_uses", "new_subscribers_only", "renewals", "is_active"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            if self.instance.kind == Coupon.Kind.PERCENT:
                self.fields["percent"].initial = self.instance.value
            else:
                self.fields["amount"].initial = self.instance.value

    def clean_code(self):
        code = (self.cleaned_data.get("code") or "").strip().upper()
        if Coupon.objects.filter(code=code).exclude(pk=self.instance.pk).exists():
            raise ValidationError(_("A coupon with this code already exists."), code="coupon_exists")
        return code

    def clean(self):
        cleaned = super().clean()
        kind = cleaned.get("kind")
        if kind == Coupon.Kind.PERCENT and not cleaned.get("percent"):
            self.add_error("percent", _("Enter the percent off, from 1 to 100."))
        if kind == Coupon.Kind.AMOUNT and not cleaned.get("amount"):
            self.add_error("amount", _("Enter the amount off, in reais."))
        return cleaned

    def save(self, commit=True):
        kind = self.cleaned_data["kind"]
        self.instance.value = self.cleaned_data["percent"] if kind == Coupon.Kind.PERCENT else self.cleaned_data["amount"]
        return super().save(commit=commit)


@admin.register(Coupon)
class CouponAdmin(admin.ModelAdmin):
    form = CouponAdminForm
    list_display = ["code", "kind", "value_display", "uses", "max_uses", "starts_at", "ends_at", "new_subscribers_only", "is_active"]
    list_filter = ["kind", "is_active", "new_subscribers_only"]
    search_fields = ["code"]
    filter_horizontal = ["plans"]
    readonly_fields = ["uses"]
    fieldsets = [
        (None, {"fields": ["code", "kind", "percent", "amount", "is_active"]}),
        (_("Where and when"), {"fields": ["plans", "starts_at", "ends_at", "max_uses", "uses", "new_subscribers_only", "renewals"]}),
    ]

    @admin.display(description=_("value"), ordering="value")
    def value_display(self, obj):
        return obj.value_display

    def has_delete_permission(self, request, obj=None):
        # A coupon that was used is part of money records: switch it off instead.
        if obj is not None and obj.checkouts.exists():
            return False
        return super().has_delete_permission(request, obj)
