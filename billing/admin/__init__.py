"""
The finance and plans console: `finance` (plans, bumps, gateways, checkouts,
subscriptions, webhook events, the dashboard), `payments` (replay,
reconciliation), `forms`. Importing the package registers them all.
"""

from billing.admin import audit, finance, offers, payments, refunds  # noqa: F401 - registers the ModelAdmins
