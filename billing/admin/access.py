"""Who may see money in the back office: one rule for every finance page, replay and reconciliation."""

FINANCE_PERMISSION = "billing.view_finance"


def has_finance_permission(user) -> bool:
    """Active staff with the finance permission (superusers have it): they see money and may move it."""
    return bool(user and user.is_active and user.is_staff and user.has_perm(FINANCE_PERMISSION))
