"""The payee details an admin needs to settle a Lemon Squeezy payout: their shape, the rules
they follow (IBAN checksum, email addresses) and how they are shown masked.

Pure functions: nothing here reads or writes the database or logs anything.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import asdict, dataclass

from app.services.accounts.emails import normalize_email

MAX_NAME_LENGTH = 140
# The IBAN length of each country in the SWIFT IBAN registry (French overseas departments
# and territories use FR's).
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22,
    "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32,
    "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24,
    "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24, "SC": 31,
    "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28, "TL": 23,
    "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}  # fmt: skip
MAX_IBAN_LENGTH = 34  # ISO 13616
_IBAN_CHARS = re.compile(r"[A-Z0-9]*")
_IBAN_START = re.compile(r"[A-Z]{2}[0-9]{2}")


@dataclass(frozen=True)
class PayeeDetails:
    """Who is paid and where: exactly one of ``iban`` (normalised) and ``paypal_email``."""

    name: str
    email: str
    iban: str | None = None
    paypal_email: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str) -> PayeeDetails:
        return cls(**json.loads(raw))

    def masked(self) -> MaskedPayee:
        return MaskedPayee(
            name=mask_name(self.name),
            email=mask_email(self.email),
            iban=mask_iban(self.iban) if self.iban else None,
            paypal_email=mask_email(self.paypal_email) if self.paypal_email else None,
        )


@dataclass(frozen=True)
class MaskedPayee:
    """What a page may show of the details: enough to recognise them, not to use them."""

    name: str
    email: str
    iban: str | None
    paypal_email: str | None


def normalize_iban(raw: str) -> str:
    """The IBAN in upper case without spaces, or ``ValueError`` with a message for the payee:
    letters and digits only, a known country code at its length, and the ISO 13616 check
    digits (mod 97 = 1)."""
    iban = raw.replace(" ", "").upper()
    if not _IBAN_CHARS.fullmatch(iban):
        raise ValueError("An IBAN has only letters, digits and spaces.")
    if len(iban) > MAX_IBAN_LENGTH:
        raise ValueError(f"An IBAN has at most {MAX_IBAN_LENGTH} characters.")
    if not _IBAN_START.match(iban) or iban[:2] not in IBAN_LENGTHS:
        raise ValueError("An IBAN starts with a country code and two digits, like DE89.")
    expected = IBAN_LENGTHS[iban[:2]]
    if len(iban) != expected:
        raise ValueError(
            f"An IBAN from {iban[:2]} has {expected} characters, this one has {len(iban)}."
        )
    # Move the first four characters to the end, letters to numbers (A=10 … Z=35): mod 97 is 1.
    digits = "".join(str(int(char, 36)) for char in iban[4:] + iban[:4])
    if int(digits) % 97 != 1:
        raise ValueError("This IBAN's check digits do not match: check it for a typo.")
    return iban


def normalize_name(raw: str) -> str:
    """The name with runs of white space made single spaces, or ``ValueError``."""
    name = " ".join(raw.split())
    if not name:
        raise ValueError("Enter the payee's name.")
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"Use at most {MAX_NAME_LENGTH} characters.")
    if any(unicodedata.category(char).startswith("C") for char in name):
        raise ValueError("The name may contain letters, spaces and punctuation only.")
    return name


def normalize_payee_email(raw: str) -> str:
    """The address as ``normalize_email`` spells it, or ``ValueError``."""
    email = normalize_email(raw)
    if email is None:
        raise ValueError("Enter a valid email address, like name@example.com.")
    return email


def mask_name(name: str) -> str:
    """``"Jane Doe"`` → ``"J*** D***"``: initials only, and no hint of the lengths."""
    return " ".join(f"{word[0]}***" for word in name.split())


def mask_email(email: str) -> str:
    """``"jane@example.com"`` → ``"j***@example.com"``."""
    local, _, domain = email.rpartition("@")
    return f"{local[:1]}***@{domain}"


def mask_iban(iban: str) -> str:
    """``"DE89370400440532013000"`` → ``"DE** **** **** **** **30 00"``: the country and the
    last four characters, in the groups of four an IBAN is written in."""
    shown = iban[:2] + "*" * (len(iban) - 6) + iban[-4:]
    return " ".join(shown[i : i + 4] for i in range(0, len(shown), 4))
