"""
Encrypted model fields (Fernet, keys from FIELD_ENCRYPTION_KEY).

FIELD_ENCRYPTION_KEY may hold several comma-separated keys: the first
encrypts, every one decrypts, so keys can be rotated without a migration.
The column holds only ciphertext; lookups on it are not possible, by design.
"""

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models


@lru_cache(maxsize=4)
def _fernet(keys: str) -> MultiFernet:
    return MultiFernet([Fernet(key.strip().encode()) for key in keys.split(",") if key.strip()])


def encrypt(value: str) -> str:
    return _fernet(settings.FIELD_ENCRYPTION_KEY).encrypt(value.encode()).decode()


def decrypt(token: str) -> str:
    return _fernet(settings.FIELD_ENCRYPTION_KEY).decrypt(token.encode()).decode()


class EncryptedTextField(models.TextField):
    """A text value stored encrypted; reads give the plain value back."""

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value in (None, ""):
            return value
        return encrypt(value)

    def from_db_value(self, value, expression, connection):
        if value in (None, ""):
            return value
        try:
            return decrypt(value)
        except InvalidToken:
            # Wrong key: never show ciphertext or crash a page; the admin sees a marker.
            return "<undecryptable>"
