"""
Money is integer cents of BRL everywhere. This module is the one place that
turns "29,90" into 2990 and 2990 into "R$ 29,90".
"""

import re
from decimal import ROUND_HALF_UP, Decimal

_AMOUNT = re.compile(r"^\s*(?:R\$\s*)?(\d{1,3}(?:\.\d{3})*|\d+)(?:,(\d{1,2}))?\s*$")
_DOT_DECIMAL = re.compile(r"^\s*(?:R\$\s*)?(\d+)\.(\d{1,2})\s*$")


def parse_reais(text: str | int | Decimal) -> int:
    """'29,90' / '1.299,90' / 'R$ 29,90' / '29.90' / 29 → cents. Raises ValueError."""
    if isinstance(text, int):
        return text * 100
    if isinstance(text, Decimal):
        return int((text * 100).quantize(Decimal("1"), rounding=ROUND_HALF_UP))
    match = _AMOUNT.match(text)
    if match:
        whole = int(match.group(1).replace(".", ""))
        fraction = (match.group(2) or "0").ljust(2, "0")
        return whole * 100 + int(fraction)
    match = _DOT_DECIMAL.match(text)
    if match:
        return int(match.group(1)) * 100 + int(match.group(2).ljust(2, "0"))
    raise ValueError(f"not an amount in reais: {text!r}")


def format_brl(cents: int | None) -> str:
    """2990 → 'R$ 29,90'; 129990 → 'R$ 1.299,90'."""
    if cents is None:
        return ""
    sign = "-" if cents < 0 else ""
    reais, centavos = divmod(abs(int(cents)), 100)
    return f"{sign}R$ {reais:,}".replace(",", ".") + f",{centavos:02d}"


def cents_to_decimal(cents: int) -> Decimal:
    return (Decimal(cents) / 100).quantize(Decimal("0.01"))
