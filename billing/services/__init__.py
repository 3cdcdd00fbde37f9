"""
Every billing state change lives in this package: checkouts, charges,
activation, payments, subscriptions, the sweep and the gateway switches
(contract §8). Views, admin actions, webhooks, commands and tasks are doors
that call these functions; none of them changes a status itself.

Rules every function follows:

- keyword-only arguments, one `now` read at the top (tests pass it);
- one transaction, rows locked through `services.locks`, in its one order;
- idempotent: repeating a call (a duplicate webhook, a double click) changes
  nothing the second time;
- side effects (e-mail) only after commit, through billing.notifications.
"""

from billing.services.activation import activate_checkout, settle_free_checkout
from billing.services.cards import charge_card, remove_saved_card
from billing.services.charges import issue_pix_charge, needs_customer_details
from billing.services.checkouts import FAIL_STATUSES, create_checkout, fail_checkout, refund_checkout, restore_disputed_checkout
from billing.services.erasure import anonymous_email, erase_customer_data
from billing.services.gateway_config import activate_gateway, deactivate_gateway, gateway_for_new_charge, rotate_postback_token
from billing.services.guest_claims import claim_guest_payments
from billing.services.marketplace import match_plan, record_marketplace_payment
from billing.services.offers import (
    CouponQuote,
    count_coupon_use,
    create_coupon,
    is_reopenable,
    quote_coupon,
    reopen_checkout,
    unsubscribe_from_reminders,
)
from billing.services.payments import ProcessingError, apply_charge, apply_marketplace_notification, checkout_for_charge
from billing.services.proration import upgrade_credit_cents
from billing.services.sandbox import simulate_sandbox_event
from billing.services.subscriptions import (
    PlanChange,
    activate_subscription,
    cancel_subscription,
    cancel_subscription_now,
    change_plan,
    expire_subscription,
    extend_subscription,
)
from billing.services.sweep import SweepResult, sweep_subscriptions
from billing.services.withdrawals import Withdrawal, complete_refund_request, withdraw_subscription

__all__ = [
    "CouponQuote",
    "count_coupon_use",
    "create_coupon",
    "quote_coupon",
    "is_reopenable",
    "reopen_checkout",
    "unsubscribe_from_reminders",
    "settle_free_checkout",
    "FAIL_STATUSES",
    "PlanChange",
    "ProcessingError",
    "SweepResult",
    "activate_checkout",
    "activate_gateway",
    "activate_subscription",
    "apply_charge",
    "apply_marketplace_notification",
    "cancel_subscription",
    "charge_card",
    "remove_saved_card",
    "cancel_subscription_now",
    "change_plan",
    "claim_guest_payments",
    "checkout_for_charge",
    "create_checkout",
    "deactivate_gateway",
    "expire_subscription",
    "extend_subscription",
    "fail_checkout",
    "gateway_for_new_charge",
    "issue_pix_charge",
    "match_plan",
    "needs_customer_details",
    "record_marketplace_payment",
    "refund_checkout",
    "restore_disputed_checkout",
    "rotate_postback_token",
    "simulate_sandbox_event",
    "sweep_subscriptions",
    "upgrade_credit_cents",
    "Withdrawal",
    "anonymous_email",
    "erase_customer_data",
    "complete_refund_request",
    "withdraw_subscription",
]
