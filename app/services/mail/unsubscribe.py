"""Unsubscribing: the signed one-click link every non-account mail carries.

The link names a user and a category, signed with ``SECRET_KEY`` for this purpose only
(``app/services/accounts/tokens.py``). It needs no login and does not expire: a mail read
months later can still stop its category (RFC 8058: the mail client POSTs to it, without
cookies or a CSRF token). All it can do is turn one category off for one user.
"""

from __future__ import annotations

from app.extensions import db
from app.models import OPTIONAL_CATEGORIES, User
from app.services.accounts.tokens import (
    FORGED,
    OTHER_ACCOUNT,
    TokenRefused,
    make_token,
    read_token,
)
from app.services.mail.rendering import absolute_url

PURPOSE = "unsubscribe"


def unsubscribe_url(user: User, category: str) -> str:
    """The link that stops mails of ``category`` to ``user``: shown in the mail's footer and
    sent as ``List-Unsubscribe`` (with ``List-Unsubscribe-Post: List-Unsubscribe=One-Click``).
    A GET shows a page that asks to confirm; a POST turns the category off."""
    token = make_token(PURPOSE, {"u": user.id, "c": category})
    return absolute_url("auth.unsubscribe", token=token)


def read_unsubscribe(token: str, signed_in: User | None = None) -> tuple[User, str]:
    """The user and category of an unsubscribe link. ``TokenRefused`` when it is forged or
    altered, its user is gone, or someone else is signed in in this browser (they would
    turn off another person's mails, or think they turned off their own). Read-only."""
    payload = read_token(PURPOSE, token, max_age=None)
    category = payload.get("c")
    user = db.session.get(User, str(payload.get("u", "")))
    if user is None or category not in OPTIONAL_CATEGORIES:
        raise TokenRefused(FORGED)
    if signed_in is not None and signed_in.id != user.id:
        raise TokenRefused(OTHER_ACCOUNT)
    return user, category
