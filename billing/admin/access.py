"""Who may see money in the back office: one rule for every finance page, replay and reconciliation."""

FINANCE_PERMISSION = "billing.view_finance"


def has_finance_permission(user) -> bool:
    """Active staff with the finance permission (superusers have it): they see money and may move it."""
    return bool(user and user.is_active and user.is_staff and user.has_perm(FINANCE_PERMISSION))


class FinanceOnlyMixin:
    """Money pages: the model permission and the finance permission, both."""

    def has_view_permission(self, request, obj=None):
        return has_finance_permission(request.user) and super().has_view_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return has_finance_permission(request.user) and super().has_change_permission(request, obj)

    def has_add_permission(self, request):
        return has_finance_permission(request.user) and super().has_add_permission(request)

    def has_delete_permission(self, request, obj=None):
        return False  # money records are never deleted


class ReadOnlyMixin(FinanceOnlyMixin):
    """Money records only read here (the ledger, the audit's runs, what the marketplace paid)."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
