"""
billing's models, one module per sub-domain; every model is importable from here
(`from billing.models import Checkout`), which is how the rest of the code imports them.

| module | models |
| --- | --- |
| plans | Plan, OrderBump (and MAX_INSTALLMENTS) |
| gateways | PaymentGateway |
| offers | Coupon, ReminderOptOut |
| checkouts | Checkout, CheckoutCharge, ChargeAttempt |
| subscriptions | Subscription |
| cards | CardAttempt |
| webhooks | WebhookEvent |
| reconciliation | ReconciliationItem |
| marketplace | UnclaimedMarketplacePayment |
| refunds | RefundRequest |
| finance | FinanceDashboard (a proxy: the dashboard's place in the admin index) |

The money ledger and the audit's runs live in billing/ledger_models.py (billing's models all the same).
"""

from billing.ledger_models import LedgerEntry, MoneyAuditRun
from billing.models.cards import CardAttempt
from billing.models.checkouts import ChargeAttempt, Checkout, CheckoutCharge
from billing.models.finance import FinanceDashboard
from billing.models.gateways import PaymentGateway, new_postback_token
from billing.models.marketplace import UnclaimedMarketplacePayment
from billing.models.offers import Coupon, ReminderOptOut
from billing.models.plans import MAX_INSTALLMENTS, OrderBump, Plan
from billing.models.reconciliation import ReconciliationItem
from billing.models.refunds import RefundRequest
from billing.models.subscriptions import Subscription
from billing.models.webhooks import WebhookEvent

__all__ = [
    "MAX_INSTALLMENTS",
    "CardAttempt",
    "ChargeAttempt",
    "Checkout",
    "CheckoutCharge",
    "Coupon",
    "FinanceDashboard",
    "LedgerEntry",
    "MoneyAuditRun",
    "OrderBump",
    "PaymentGateway",
    "Plan",
    "ReconciliationItem",
    "RefundRequest",
    "ReminderOptOut",
    "Subscription",
    "UnclaimedMarketplacePayment",
    "WebhookEvent",
    # The migrations name it (billing/migrations/0001_initial.py: PaymentGateway.postback_token's default).
    "new_postback_token",
]
