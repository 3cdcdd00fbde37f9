"""
Encrypted model fields (Fernet, keys from FIELD_ENCRYPTION_KEY).

FIELD_ENCRYPTION_KEY may hold several comma-separated keys: the first
encrypts, every one decrypts, so keys can be rotated without a migration.
The column holds only ciphertext; lookups on it are not possible, by design.
"""

import json
import logging
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django import forms
from django.conf import settings
from django.db import models

logger = logging.getLogger(__name__)


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


class EncryptedJSONField(EncryptedTextField):
    """
    A JSON value (dict, list, ...) stored encrypted as text; reads give the
    parsed value back. For provider payloads that carry personal data (CPF,
    phone, e-mail). SQL NULL stays NULL, so `isnull` lookups still work; no
    lookup can look inside the value.
    """

    def get_prep_value(self, value):
        if value is None:
            return None
        return encrypt(json.dumps(value, ensure_ascii=False))

    def from_db_value(self, value, expression, connection):
        if value is None:
            return None
        try:
            return json.loads(decrypt(value))
        except (InvalidToken, ValueError):
            # Wrong key or a damaged value: code reading it sees "nothing stored", never ciphertext.
            logger.error("undecryptable encrypted JSON value", extra={"field": f"{self.model.__name__}.{self.name}"})
            return None

    def to_python(self, value):
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value

    def value_to_string(self, obj):
        return json.dumps(self.value_from_object(obj), ensure_ascii=False)

    def formfield(self, **kwargs):
        return super(models.TextField, self).formfield(**{"form_class": forms.JSONField, **kwargs})
