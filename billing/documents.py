"""Brazilian customer documents and phone numbers, checked the way a bank would."""

import re

# Valid DDD (area) codes: 11–99 without the unused ones.
_VALID_DDD = {
    11, 12, 13, 14, 15, 16, 17, 18, 19, 21, 22, 24, 27, 28, 31, 32, 33, 34, 35, 37, 38, 41, 42, 43, 44, 45, 46,
    47, 48, 49, 51, 53, 54, 55, 61, 62, 63, 64, 65, 66, 67, 68, 69, 71, 73, 74, 75, 77, 79, 81, 82, 83, 84, 85,
    86, 87, 88, 89, 91, 92, 93, 94, 95, 96, 97, 98, 99,
}


def digits_only(text: str) -> str:
    """The one digits-only rule: CPFs, phones and amounts typed with dots, dashes or spaces."""
    return re.sub(r"\D", "", text or "")


def is_valid_cpf(value: str) -> bool:
    """11 digits, not all the same, both mod-11 check digits right."""
    cpf = digits_only(value)
    if len(cpf) != 11 or cpf == cpf[0] * 11:
        return False
    for size in (9, 10):
        total = sum(int(d) * weight for d, weight in zip(cpf[:size], range(size + 1, 1, -1), strict=True))
        check = (total * 10) % 11 % 10
        if check != int(cpf[size]):
            return False
    return True


def normalize_phone(value: str) -> str | None:
    """A Brazilian phone with DDD as digits ('11987654321'), or None. Accepts +55 in front."""
    phone = digits_only(value)
    if len(phone) in (12, 13) and phone.startswith("55"):
        phone = phone[2:]
    if len(phone) not in (10, 11):
        return None
    if int(phone[:2]) not in _VALID_DDD:
        return None
    if len(phone) == 11 and phone[2] != "9":
        return None  # mobile numbers have 9 digits starting with 9
    return phone
