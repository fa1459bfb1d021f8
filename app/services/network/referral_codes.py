"""Referral codes: short, unique, unambiguous to read aloud (Crockford's base32)."""

from __future__ import annotations

import re
import secrets

CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # no I, L, O or U
CODE_LENGTH = 8
_CODE_SHAPE = re.compile(f"^[{CODE_ALPHABET}]{{{CODE_LENGTH}}}$")
# What people type for what they heard or read: O for 0, I or L for 1, dashes and spaces.
_READ_ALOUD = str.maketrans({"O": "0", "I": "1", "L": "1", "-": None, " ": None})


def generate_referral_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalize_code(raw: str) -> str | None:
    """The canonical code for what a person typed, or ``None`` if it cannot be one."""
    code = raw.strip().upper().translate(_READ_ALOUD)
    return code if _CODE_SHAPE.match(code) else None
