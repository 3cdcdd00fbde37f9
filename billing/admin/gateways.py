"""
Payment gateways: exactly one active for our checkout, secret keys write-only and
masked, the postback URL shown ready to paste (contract §5).
"""


from django.contrib import admin, messages
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from billing import services
from billing.admin.actions import run_service
from billing.admin.forms import PaymentGatewayAdminForm
from billing.models import PaymentGateway


@admin.register(PaymentGateway)
class PaymentGatewayAdmin(admin.ModelAdmin):
    form = PaymentGatewayAdminForm
    service_arg = "gateway"
    list_display = ["__str__", "is_active", "masked_secret_admin", "postback_url_admin", "updated_at"]
    readonly_fields = ["is_active", "masked_secret_admin", "postback_url_admin", "created_at", "updated_at"]
    actions = ["activate", "deactivate", "rotate_token"]

    def get_fields(self, request, obj=None):
        fields = ["kind", "public_key", "new_secret_key", "clear_secret_key", "masked_secret_admin", "is_active"]
        if obj is not None:
            fields += ["postback_url_admin", "created_at", "updated_at"]
        return fields

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "kind"] if obj is not None else self.readonly_fields

    @admin.display(description=_("secret key"))
    def masked_secret_admin(self, obj):
        return obj.masked_secret or "—"

    @admin.display(description=_("postback URL"))
    def postback_url_admin(self, obj):
        if not obj.pk:
            return "—"
        return format_html(
            '<input type="text" readonly value="{}" size="90" onclick="this.select()" aria-label="{}">',
            obj.postback_url,
            gettext("postback URL"),
        )

    @admin.action(description=_("Activate (the one gateway for our checkout)"), permissions=["change"])
    def activate(self, request, queryset):
        if queryset.filter(kind__in=PaymentGateway.INTERNAL_KINDS).count() > 1:
            self.message_user(request, gettext("Choose one internal gateway to activate."), messages.ERROR)
            return
        run_service(self, request, queryset, services.activate_gateway, gettext("Activated."))

    @admin.action(description=_("Deactivate"), permissions=["change"])
    def deactivate(self, request, queryset):
        run_service(self, request, queryset, services.deactivate_gateway, gettext("Deactivated."))

    @admin.action(description=_("Rotate the postback token (paste the new URL at the provider)"), permissions=["change"])
    def rotate_token(self, request, queryset):
        run_service(self, request, queryset, services.rotate_postback_token, gettext("Postback token rotated."))

