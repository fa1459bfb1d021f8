"""Secrets at rest (payee details): Fernet tokens under the keys in ``FERNET_KEYS``.

``FERNET_KEYS`` is a comma-separated list, newest first. New tokens use the newest key; any key
of the list decrypts; ``rotate`` re-encrypts a token with the newest key, so an old key can be
dropped once ``flask rotate-keys`` has run.
"""

from __future__ import annotations

import functools

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app

__all__ = ["InvalidToken", "KeysMissing", "decrypt", "encrypt", "is_configured", "rotate"]


class KeysMissing(RuntimeError):
    """No key is configured: nothing can be encrypted or decrypted."""


def parse_keys(raw: str) -> list[Fernet]:
    """The keys of a ``FERNET_KEYS`` value, newest first.

    Raises ``ValueError`` naming the position of a key that is not a Fernet key (32 bytes,
    url-safe base64), never the key itself.
    """
    keys = []
    for position, key in enumerate((part.strip() for part in raw.split(",")), start=1):
        if not key:
            continue
        try:
            keys.append(Fernet(key))
        except ValueError:
            raise ValueError(
                f"FERNET_KEYS: key {position} is not a Fernet key (generate one with "
                '`python -c "from cryptography.fernet import Fernet; '
                'print(Fernet.generate_key().decode())"`).'
            ) from None
    return keys


@functools.lru_cache(maxsize=4)
def _keyring(raw: str) -> tuple[MultiFernet, Fernet]:
    keys = parse_keys(raw)
    if not keys:
        raise KeysMissing("FERNET_KEYS is not set: payee details cannot be encrypted.")
    return MultiFernet(keys), keys[0]


def _configured() -> tuple[MultiFernet, Fernet]:
    return _keyring(current_app.config["FERNET_KEYS"])


def is_configured() -> bool:
    """Whether at least one key is configured (create_app has checked that they parse)."""
    try:
        _configured()
    except KeysMissing:
        return False
    return True


def encrypt(text: str) -> str:
    """A token of ``text`` under the newest key. Raises ``KeysMissing`` without keys."""
    return _configured()[0].encrypt(text.encode()).decode()


def decrypt(token: str) -> str:
    """The text of a token written under any configured key; ``InvalidToken`` otherwise."""
    return _configured()[0].decrypt(token.encode()).decode()


def rotate(token: str) -> str | None:
    """The token re-encrypted under the newest key, or ``None`` when it already is (so a
    second rotation changes nothing). ``InvalidToken`` when no configured key reads it."""
    keyring, newest = _configured()
    try:
        newest.decrypt(token.encode())
        return None
    except InvalidToken:
        return keyring.rotate(token.encode()).decode()
