"""Who sells (contract §2, Decreto 7.962/2013): the SELLER_* settings as every footer and receipt show them."""

import re
from dataclasses import dataclass

from django.conf import settings

SETTINGS = ("SELLER_NAME", "SELLER_DOCUMENT", "SELLER_ADDRESS", "SUPPORT_EMAIL")


@dataclass(frozen=True)
class Seller:
    name: str
    document: str
    address: str
    support_email: str

    @property
    def is_named(self) -> bool:
        return bool(self.name)


def format_document(value: str) -> str:
    """A CNPJ as 12.345.678/0001-90, a CPF as 123.456.789-09; anything else as given."""
    digits = re.sub(r"\D", "", value)
    if len(digits) == 14:
        return f"{digits[:2]}.{digits[2:5]}.{digits[5:8]}/{digits[8:12]}-{digits[12:]}"
    if len(digits) == 11:
        return f"{digits[:3]}.{digits[3:6]}.{digits[6:9]}-{digits[9:]}"
    return value.strip()


def get_seller() -> Seller:
    return Seller(
        name=settings.SELLER_NAME.strip(),
        document=format_document(settings.SELLER_DOCUMENT),
        address=settings.SELLER_ADDRESS.strip(),
        support_email=settings.SUPPORT_EMAIL.strip(),
    )


def missing_settings() -> list[str]:
    return [name for name in SETTINGS if not getattr(settings, name).strip()]


def seller(request) -> dict:
    """Context processor: `seller` in every page (the footer)."""
    return {"seller": get_seller()}
