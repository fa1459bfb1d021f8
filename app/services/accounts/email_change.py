"""Changing the email address: confirmed from the new address before it takes effect.

The confirmation link is bound to the user, the new address and the current one: once the
address changes (by this link or another) every older link is stale, so each works once.
The old address is told, so a takeover does not go unnoticed.
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import User
from app.services.accounts.accounts import (
    EMAIL_TAKEN,
    INVALID_EMAIL,
    NOT_THE_CURRENT_ONE,
    find_user_by_email,
)
from app.services.accounts.emails import normalize_email
from app.services.accounts.passwords import verify_password
from app.services.accounts.tokens import (
    OTHER_ACCOUNT,
    USED,
    TokenRefused,
    make_token,
    read_token,
)
from app.services.mail.outbox import queue_mail
from app.services.mail.rendering import absolute_url
from app.services.ops import audit

PURPOSE = "email-change"
CONFIRM_LINK_MAX_AGE = 24 * 3600  # seconds
SAME_ADDRESS = "That is already your address."


def request_email_change(
    user: User, new_email: str, password: str, ip_hash: str | None
) -> dict[str, str]:
    """Mail a confirmation link to ``new_email`` and a notice to the current address, after
    checking the password and that no account has the new address; errors by field
    otherwise, all at once, nothing sent ("taken" only with the right password, so that a
    guess cannot find out who has an account). A wrong password is audited, as for a
    password change. The address itself does not change here. Flushes only."""
    errors = {}
    if not verify_password(user.password_hash, password):
        audit.record_own("user.email_change_failed", user.id, ip_hash)
        errors["current_password"] = NOT_THE_CURRENT_ONE
    normalized = normalize_email(new_email)
    if normalized is None:
        errors["new_email"] = INVALID_EMAIL
    elif normalized.lower() == user.email.lower():
        errors["new_email"] = SAME_ADDRESS
    elif not errors and find_user_by_email(normalized) is not None:
        errors["new_email"] = EMAIL_TAKEN
    if errors:
        return errors
    token = make_token(PURPOSE, {"u": user.id, "e": normalized, "o": user.email})
    url = absolute_url("auth.confirm_email", token=token)
    hours = CONFIRM_LINK_MAX_AGE // 3600
    queue_mail(
        normalized,
        "email_change_confirm",
        context={"url": url, "new_email": normalized, "hours": hours},
        user=user,
    )
    queue_mail(user, "email_change_notice", context={"new_email": normalized})
    audit.record_own("user.email_change_requested", user.id, ip_hash, new_email=normalized)
    return {}


def pending_change(token: str, user: User) -> str:
    """The new address a confirmation token (still good, for ``user``) sets; ``TokenRefused``
    when it is expired, forged, used or stale (the address changed since), or another
    account's. Read-only."""
    payload = read_token(PURPOSE, token, CONFIRM_LINK_MAX_AGE)
    if payload.get("u") != user.id:
        raise TokenRefused(OTHER_ACCOUNT)
    if payload.get("o") != user.email or not isinstance(payload.get("e"), str):
        raise TokenRefused(USED)
    return payload["e"]


def confirm_email_change(token: str, user: User, ip_hash: str | None) -> str:
    """Set the address the token names; returns it. ``TokenRefused`` as ``pending_change``
    does, or when another account took the address meanwhile — nothing changed then.
    Locks the user's row; audited. Flushes only (in a savepoint, so a lost race on the unique
    index leaves the transaction usable)."""
    db.session.refresh(user, with_for_update=True)
    new_email = pending_change(token, user)
    if find_user_by_email(new_email) is not None:
        raise TokenRefused(EMAIL_TAKEN)
    old_email = user.email
    try:
        with db.session.begin_nested():
            user.email = new_email
    except IntegrityError:
        db.session.refresh(user)
        raise TokenRefused(EMAIL_TAKEN) from None
    audit.record_own(
        "user.email_changed", user.id, ip_hash, old_email=old_email, new_email=new_email
    )
    return new_email
