"""Email addresses in one canonical spelling, so one mailbox is one account."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

MAX_EMAIL_LENGTH = 254  # RFC 5321's longest path


def normalize_email(raw: str) -> str | None:
    """The address as we store and look it up, or ``None`` when it is not a valid address.

    The domain is lower-cased and IDNA-encoded to ASCII (``exämple.com`` and
    ``xn--exmple-cua.com`` are one domain), the local part is kept as typed (NFC-normalized):
    the unique index on ``lower(email)`` then makes every spelling of a mailbox one account.
    """
    raw = raw.strip()
    if len(raw) > MAX_EMAIL_LENGTH:  # cheap refusal before any parsing
        return None
    try:
        parsed = validate_email(raw, check_deliverability=False)
    except EmailNotValidError:
        return None
    return f"{parsed.local_part}@{parsed.ascii_domain}"
