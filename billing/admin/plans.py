"""
Plans and order bumps: prices typed in reais; a plan or bump that was sold is only
ever deactivated, never deleted.
"""


from django.contrib import admin
from django.db import models
from django.utils.translation import gettext_lazy as _

from billing.admin.display import benefits_text
from billing.admin.forms import OrderBumpAdminForm, PlanAdminForm
from billing.models import OrderBump, Plan


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    form = PlanAdminForm
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_display = ["name", "price_admin", "duration_days", "benefits_admin", "is_active", "accepts_pix", "accepts_card", "display_order"]
    list_editable = ["display_order"]
    list_filter = ["is_active", "accepts_pix", "accepts_card", "card_style"]
    search_fields = ["name"]
    fieldsets = [
        (None, {"fields": ["name", "price", "duration_days", "trial_days", "is_active", "display_order"]}),
        (_("Sales page"), {"fields": ["benefits", "cta_text", "card_style"]}),
        (_("Payment"), {"fields": ["accepts_pix", "accepts_card", "max_installments", "checkout_url"]}),
    ]

    @admin.display(description=_("price"), ordering="price_cents")
    def price_admin(self, obj):
        return obj.price_display

    @admin.display(description=_("benefits"))
    def benefits_admin(self, obj):
        return benefits_text(obj.benefits)

    def has_delete_permission(self, request, obj=None):
        # A plan that was sold is only ever deactivated.
        if obj is not None and (obj.checkouts.exists() or obj.subscriptions.exists()):
            return False
        return super().has_delete_permission(request, obj)


@admin.register(OrderBump)
class OrderBumpAdmin(admin.ModelAdmin):
    form = OrderBumpAdminForm
    list_display = ["name", "price_admin", "is_active", "display_order"]
    list_filter = ["is_active"]
    search_fields = ["name"]
    fields = ["name", "description", "price", "is_active", "display_order"]

    @admin.display(description=_("price"), ordering="price_cents")
    def price_admin(self, obj):
        return obj.price_display

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.checkouts.exists():
            return False
        return super().has_delete_permission(request, obj)

