"""Password reset by mail: a signed link, good once, for an hour; no account enumeration.

The link is bound to the user, their password hash and the address it was mailed to: setting
a password (by this link or any other way) makes it stale, so it works once, and so does a
change of address (a link in the old mailbox no longer opens the account). Asking for a link
answers the same whether or not the address has an account, and does the same work (the mail
is rendered either way; only a real account's is stored and sent).
"""

from __future__ import annotations

from app.extensions import db
from app.models import User
from app.services.accounts.accounts import find_user_by_email, password_problem
from app.services.accounts.passwords import hash_password
from app.services.accounts.sessions import end_all_sessions
from app.services.accounts.tokens import (
    FORGED,
    OTHER_ACCOUNT,
    USED,
    TokenRefused,
    fingerprint,
    make_token,
    read_token,
)
from app.services.mail.outbox import queue_mail
from app.services.mail.rendering import absolute_url, render_mail
from app.services.ops import audit

PURPOSE = "password-reset"
RESET_LINK_MAX_AGE = 3600  # seconds
# What the form answers, for every address.
SENT = "If an account exists for that address, we've sent a link to reset your password."


def request_password_reset(email: str, ip_hash: str | None) -> None:
    """Mail a reset link to the account of ``email``, if there is one. Audited either way
    (an unknown address without the address). Flushes only; the mail goes after commit."""
    user = find_user_by_email(email)
    if user is None:
        # The same rendering a real request does, so timing does not tell the two apart.
        stand_in = User(username=email.partition("@")[0], email=email)
        render_mail("password_reset", {**_mail_context("stand-in"), "user": stand_in})
        audit.record("auth.password_reset_unknown_email", ip_hash=ip_hash)
        db.session.flush()
        return
    token = make_token(
        PURPOSE,
        {"u": user.id, "p": fingerprint(user.password_hash), "e": fingerprint(user.email)},
    )
    queue_mail(user, "password_reset", context=_mail_context(token))
    audit.record_own("user.password_reset_requested", user.id, ip_hash)


def _mail_context(token: str) -> dict:
    return {
        "url": absolute_url("auth.reset_password_with_link", token=token),
        "minutes": RESET_LINK_MAX_AGE // 60,
    }


def user_for_reset(token: str, signed_in: User | None = None) -> User:
    """The user a reset token is for; ``TokenRefused`` when it is expired, forged, used (the
    password or the address changed since), or for another account than ``signed_in``'s.
    Read-only."""
    payload = read_token(PURPOSE, token, RESET_LINK_MAX_AGE)
    user = db.session.get(User, str(payload.get("u", "")))
    if user is None:
        raise TokenRefused(FORGED)
    if signed_in is not None and signed_in.id != user.id:
        raise TokenRefused(OTHER_ACCOUNT)
    if (payload.get("p"), payload.get("e")) != (
        fingerprint(user.password_hash),
        fingerprint(user.email),
    ):
        raise TokenRefused(USED)
    return user


def reset_password(
    token: str, new_password: str, ip_hash: str | None, signed_in: User | None = None
) -> dict[str, str]:
    """Set the password of the token's user: errors by field (``token`` when the link is
    refused), nothing changed then. On success the link is spent (the hash changed), every
    session of the user ends, and it is audited. Locks the user's row. Flushes only."""
    try:
        user = user_for_reset(token, signed_in)
        db.session.refresh(user, with_for_update=True)  # two tabs with one link: one wins
        user_for_reset(token, signed_in)  # again, under the lock
    except TokenRefused as refused:
        return {"token": refused.message}
    problem = password_problem(new_password, email=user.email, username=user.username)
    if problem:
        return {"new_password": problem}
    user.password_hash = hash_password(new_password)
    audit.record_own("user.password_reset", user.id, ip_hash)
    end_all_sessions(user, reason="password_reset", ip_hash=ip_hash)
    return {}
