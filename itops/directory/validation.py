"""People's fields: checks shared by the services, the CSV import and (later) forms and SCIM; usernames.

Any text may hold LDAP filter metacharacters (`*()\\`): they are stored as typed and escaped by the
gateway wherever they reach a filter or a DN. NUL and other control characters are refused: no
directory string may hold them.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from datetime import date

from itops.core.errors import ValidationFailed

# Letters that Unicode does not decompose into a base letter and accents.
TRANSLITERATION = str.maketrans({
    "ø": "o", "Ø": "O", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ß": "ss", "ẞ": "SS", "ł": "l", "Ł": "L",
    "đ": "d", "Đ": "D", "ð": "d", "Ð": "D", "þ": "th", "Þ": "TH", "ı": "i", "ŋ": "n", "Ŋ": "N", "ħ": "h",
    "Ħ": "H", "ŧ": "t", "Ŧ": "T", "ĸ": "k", "ſ": "s",
})
USERNAME_MAX = 20  # Active Directory's sAMAccountName limit, kept for both flavours
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

FIELD_LIMITS = {"employee_number": 64, "given_name": 100, "family_name": 100, "preferred_name": 100, "email": 254,
                "department": 100, "title": 100, "location": 100}
LABELS = {"employee_number": "employee number", "given_name": "given name", "family_name": "family name",
          "preferred_name": "preferred name", "email": "email", "department": "department", "title": "title",
          "location": "location", "start_date": "start date", "end_date": "end date", "manager": "manager"}


def transliterate(text: str) -> str:
    """ASCII letters and digits for a name: 'Zoë Ødegård' -> 'ZoeOdegard'; what has no ASCII form is dropped."""
    decomposed = unicodedata.normalize("NFKD", text.translate(TRANSLITERATION))
    return "".join(ch for ch in decomposed if ch.isascii() and ch.isalnum())


def username_base(given_name: str, family_name: str) -> str:
    """'John', 'Doe' -> 'jdoe'. Refused when the name gives no ASCII letters at all."""
    given, family = transliterate(given_name).lower(), transliterate(family_name).lower()
    base = (given[:1] + family) if family else given
    base = base[:USERNAME_MAX - 3]  # room for a collision suffix
    if not base or not base[0].isalpha():
        raise ValidationFailed(
            f"No username can be made from the name {given_name} {family_name}: it has no letters with an ASCII "
            "form. Give a Latin-script given or family name (e.g. as the preferred name).",
            errors={"family_name": ["No ASCII username can be made from this name."]})
    return base


def derive_username(given_name: str, family_name: str, is_taken: Callable[[str], bool]) -> str:
    """jdoe, then jdoe2, jdoe3 ... : the first that `is_taken` says is free."""
    base = username_base(given_name, family_name)
    for number in range(1, 1000):
        candidate = base if number == 1 else f"{base}{number}"
        if not is_taken(candidate):
            return candidate
    raise ValidationFailed(f"Every username from {base} to {base}999 is taken.")


def clean_text(values: dict, name: str, *, required: bool = False) -> str | None:
    """The stripped value of a text field, None when blank; refuses control characters and over-long values."""
    value = values.get(name)
    value = value.strip() if isinstance(value, str) else value
    label = LABELS.get(name, name)
    if value in (None, ""):
        if required:
            raise ValidationFailed(f"The {label} is required.", errors={name: ["Required."]})
        return None
    if not isinstance(value, str):
        raise ValidationFailed(f"The {label} must be text.", errors={name: ["Not text."]})
    if _CONTROL.search(value):
        raise ValidationFailed(f"The {label} contains a control character (such as NUL); remove it.",
                               errors={name: ["Control characters are not allowed."]})
    if len(value) > FIELD_LIMITS.get(name, 100):
        raise ValidationFailed(f"The {label} is longer than {FIELD_LIMITS.get(name, 100)} characters.",
                               errors={name: [f"At most {FIELD_LIMITS.get(name, 100)} characters."]})
    return value


def clean_email(values: dict) -> str | None:
    email = clean_text(values, "email")
    if email is not None and not _EMAIL.match(email):
        raise ValidationFailed(f"{email!r} is not an email address.", errors={"email": ["Not an email address."]})
    return email


def clean_date(values: dict, name: str, *, required: bool = False) -> date | None:
    value = values.get(name)
    if isinstance(value, date):
        return value
    value = (value or "").strip() if isinstance(value, str) else value
    if not value:
        if required:
            raise ValidationFailed(f"The {LABELS[name]} is required.", errors={name: ["Required."]})
        return None
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise ValidationFailed(f"The {LABELS[name]} {value!r} is not a date (YYYY-MM-DD).",
                               errors={name: ["Use YYYY-MM-DD."]}) from None


def check_dates(start: date | None, end: date | None) -> None:
    if start and end and end < start:
        raise ValidationFailed(f"The end date {end} is before the start date {start}.",
                               errors={"end_date": ["Before the start date."]})
