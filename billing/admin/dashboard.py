"""
The finance dashboard: a proxy model's changelist, so it is listed in the admin
index; its figures come from billing.selectors.
"""

import csv
from datetime import timedelta
from urllib.parse import urlencode

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import localize
from django.utils.translation import gettext

from billing import selectors
from billing.admin.access import has_finance_permission
from billing.models import Checkout, FinanceDashboard
from billing.money import format_brl


def card_links(*, now) -> dict[str, str]:
    """Each card's changelist, filtered as near to the card's figure as the list's filters allow."""
    midnight = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    since_30d = str(midnight - timedelta(days=30))  # aware, as the admin's own date filters write it

    def checkouts(**params):
        return f"{reverse('admin:billing_checkout_changelist')}?{urlencode(params)}"

    def subscriptions(**params):
        return f"{reverse('admin:billing_subscription_changelist')}?{urlencode(params)}"

    return {
        "revenue": checkouts(status__exact="paid", paid_at__gte=since_30d),
        "active": subscriptions(status__in="trialing,active,past_due"),
        "mrr": subscriptions(status__exact="active"),
        "pending_pix": checkouts(status__exact="pending", payment_method__exact="pix"),
        "conversion": checkouts(purpose__exact="new", created_at__gte=since_30d),
        "renewals": subscriptions(end_date__gte=str(midnight), end_date__lt=str(midnight + timedelta(days=8))),
        "churn": subscriptions(status__in="canceled,expired", last_transition_at__gte=since_30d),
        "late": checkouts(is_late__exact=1, paid_at__gte=since_30d),
        "partial": reverse("admin:billing_reconciliationitem_changelist") + "?kind__exact=partial_payment&resolved__exact=0",
        "refunds": checkouts(status__exact="refunded"),
        "coupons": reverse("admin:billing_coupon_changelist"),
        "trials": subscriptions(status__exact="trialing"),
        "recovered": checkouts(is_recovered__exact=1, paid_at__gte=since_30d),
        "card_renewals": checkouts(purpose__exact="renewal", payment_method__exact="card"),
        "pix_renewals": checkouts(purpose__exact="renewal", payment_method__exact="pix"),
    }


@admin.register(FinanceDashboard)
class FinanceDashboardAdmin(admin.ModelAdmin):
    def has_view_permission(self, request, obj=None):
        return has_finance_permission(request.user)

    def has_module_permission(self, request):
        return has_finance_permission(request.user)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        return [path("", self.admin_site.admin_view(self.changelist_view), name="billing_financedashboard_changelist")]

    def changelist_view(self, request, extra_context=None):
        if not has_finance_permission(request.user):
            raise PermissionDenied
        offers = selectors.get_offer_figures()
        table = request.GET.get("csv")
        if table in OFFER_CSV_TABLES:
            return _offer_csv(table, offers)
        figures = selectors.get_finance_figures()
        method_rows, renewal_methods = selectors.get_method_figures()
        pct = lambda value: localize(value) + "%" if value is not None else "—"  # a display helper
        context = {
            "method_rows": [
                {
                    "label": Checkout.Method(row.method).label,
                    "checkouts": row.checkouts,
                    "paid": row.paid,
                    "conversion": pct(row.conversion_pct),
                    "revenue": format_brl(row.revenue_cents),
                }
                for row in method_rows
            ],
            "renewal_methods": renewal_methods,
            "card_renewal_success": pct(renewal_methods.card_success_pct),
            "pix_renewal_success": pct(renewal_methods.pix_success_pct),
            **self.admin_site.each_context(request),
            "title": gettext("Finance dashboard"),
            "opts": self.model._meta,
            "figures": figures,
            "links": card_links(now=timezone.now()),
            "day_chart": selectors.bar_chart(figures.revenue_by_day, label_format="d/m"),
            "month_chart": selectors.bar_chart(figures.revenue_by_month, label_format="M/y"),
            "money": {
                "revenue_30d": format_brl(figures.revenue_30d_cents),
                "mrr": format_brl(figures.mrr_cents),
                "pending_pix": format_brl(figures.pending_pix_cents),
                "renewals_due": format_brl(figures.renewals_due_7d_cents),
                "partial_payments": format_brl(figures.partial_payments_cents),
                "refunds_30d": format_brl(figures.refunds_30d_cents),
                "pending_refunds": format_brl(figures.pending_refunds_cents),
            },
            "conversion": localize(figures.conversion_pct) if figures.conversion_pct is not None else "—",
            "churn": localize(figures.churn_pct) if figures.churn_pct is not None else "—",
            "offers": offers,
            "offer_money": {
                "recovered": format_brl(offers.recovered_30d_cents),
                "mrr_net": format_brl(max(figures.mrr_cents - offers.mrr_discount_cents, 0)),
                "mrr_discount": format_brl(offers.mrr_discount_cents),
            },
            "trial_conversion": localize(offers.trial_conversion_pct) if offers.trial_conversion_pct is not None else "—",
            "coupon_rows": [
                {
                    "row": row,
                    "discount": format_brl(row.discount_cents),
                    "conversion": localize(row.conversion_pct) if row.conversion_pct is not None else "—",
                }
                for row in offers.coupons
            ],
            "funnel_rows": [
                {
                    "row": row,
                    "opened_pct": round(100 * row.opened / row.issued) if row.issued else 0,
                    "paid_pct": round(100 * row.paid / row.issued) if row.issued else 0,
                }
                for row in offers.funnel
            ],
            "sources": [
                {
                    "utm_source": row.utm_source or "—",
                    "utm_campaign": row.utm_campaign or "—",
                    "checkouts": row.checkouts,
                    "paid": row.paid,
                    "revenue": format_brl(row.revenue_cents),
                    "conversion": localize(row.conversion_pct) if row.conversion_pct is not None else "—",
                }
                for row in figures.by_source
            ],
        }
        return TemplateResponse(request, "admin/billing/finance_dashboard.html", context)


OFFER_CSV_TABLES = ("coupons", "funnel")


def _offer_csv(table: str, offers) -> HttpResponse:
    """The dashboard's offer tables as CSV (`?csv=coupons`, `?csv=funnel`)."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{table}.csv"'
    writer = csv.writer(response)
    if table == "coupons":
        writer.writerow([gettext("coupon"), gettext("checkouts"), gettext("paid"), gettext("discount (cents)"), gettext("uses")])
        for row in offers.coupons:
            writer.writerow([row.code, row.checkouts, row.paid, row.discount_cents, row.uses])
    else:
        writer.writerow([gettext("month"), gettext("issued"), gettext("opened"), gettext("paid")])
        for row in offers.funnel:
            writer.writerow([row.month.strftime("%Y-%m"), row.issued, row.opened, row.paid])
    return response
