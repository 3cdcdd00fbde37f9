"""Signed, expiring links that prove a user reads their mailbox."""

from django.contrib.auth.tokens import PasswordResetTokenGenerator


class EmailConfirmationTokenGenerator(PasswordResetTokenGenerator):
    """
    Like the password-reset token (same expiry, PASSWORD_RESET_TIMEOUT) but
    with its own salt, so a reset link never confirms and a confirmation link
    never resets; it stops working once the e-mail is confirmed or changed.
    """

    key_salt = "accounts.tokens.EmailConfirmationTokenGenerator"

    def _make_hash_value(self, user, timestamp):
        confirmed = "" if user.email_confirmed_at is None else user.email_confirmed_at.replace(microsecond=0, tzinfo=None)
        return f"{user.pk}{user.email}{confirmed}{timestamp}"


email_confirmation_token = EmailConfirmationTokenGenerator()
