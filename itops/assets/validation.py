"""Checks and normalisation for asset field values, shared by forms, API schemas, CSV import and services.

Each function takes the raw text and returns the stored form, or raises ValueError with a message a
person can act on.
"""
from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation

_MAC_DIGITS = re.compile(r"[0-9a-f]{12}")
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_ICCID = re.compile(r"[0-9]{18,22}")
_TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")


def luhn_ok(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def imei(raw: str) -> str:
    value = re.sub(r"[\s-]", "", raw)
    if not value.isdigit() or len(value) != 15:
        raise ValueError("An IMEI has 15 digits.")
    if not luhn_ok(value):
        raise ValueError("This IMEI fails its check digit (Luhn); look for a typing error.")
    return value


def mac(raw: str) -> str:
    digits = re.sub(r"[\s:.-]", "", raw).lower()
    if not _MAC_DIGITS.fullmatch(digits):
        raise ValueError("A MAC address has 12 hex digits, e.g. 00:1a:2b:3c:4d:5e.")
    return ":".join(digits[i:i + 2] for i in range(0, 12, 2))


def e164(raw: str) -> str:
    value = re.sub(r"[\s().-]", "", raw)
    if value.startswith("00"):
        value = "+" + value[2:]
    if not _E164.fullmatch(value):
        raise ValueError("Give the number in international (E.164) form, e.g. +4915112345678.")
    return value


def iccid(raw: str) -> str:
    value = re.sub(r"\s", "", raw)
    if not _ICCID.fullmatch(value):
        raise ValueError("A SIM ICCID has 18 to 22 digits.")
    return value


def tag(raw: str) -> str:
    value = raw.strip()
    if not _TAG.fullmatch(value):
        raise ValueError("A tag is 1-32 letters, digits, '.', '_' or '-', starting with a letter or digit.")
    return value.upper()


def iso_date(raw: str) -> date:
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        raise ValueError(f"{raw.strip()!r} is not a date; use YYYY-MM-DD.") from None


def money(raw: str) -> Decimal:
    try:
        value = Decimal(raw.strip().replace(",", ""))
    except InvalidOperation:
        raise ValueError(f"{raw.strip()!r} is not an amount; use digits and a decimal point.") from None
    if not value.is_finite() or value < 0 or value >= Decimal("1e10"):
        raise ValueError("The cost must be between 0 and 9,999,999,999.99.")
    return value.quantize(Decimal("0.01"))
