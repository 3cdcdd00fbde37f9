"""
What accounts tells the apps that build on it. Accounts is a leaf (it imports no other app of
ours, tests/test_architecture.py), so where another app must act on an account's change, accounts
sends a signal and that app connects to it in its AppConfig.ready().
"""

from django.dispatch import Signal

# Sent inside confirm_email's transaction, after the e-mail is marked confirmed (each call,
# idempotent): user=, now=. Billing hands over the guest payments made with that e-mail.
email_confirmed = Signal()
