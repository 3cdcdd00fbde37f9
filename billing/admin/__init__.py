"""
The finance and plans console, one module per page family: `plans` (plans,
order bumps), `offers` (coupons), `gateways`, `checkouts`, `subscriptions`,
`webhooks` (events and their replay), `payments` (reconciliation, unclaimed
marketplace payments), `refunds`, `audit` (money audit, ledger) and
`dashboard`; `access`, `actions`, `display` and `forms` are what they share.
Importing the package registers them all.
"""

from billing.admin import (  # noqa: F401 - registers the ModelAdmins
    audit,
    checkouts,
    dashboard,
    gateways,
    offers,
    payments,
    plans,
    refunds,
    subscriptions,
    webhooks,
)
