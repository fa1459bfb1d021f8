"""Sign-in sessions: what a session cookie or a remember-me cookie must prove, and ending them.

A session (and a remember-me cookie, which holds the same value) names
``<user id>:<session token>:<signed-in time>``, signed by Flask with ``SECRET_KEY``. It is
valid while the user's ``session_token`` is unchanged and for ``REMEMBER_COOKIE_DURATION``
after the sign-in. Rotating the token (log out, password change, "log out other devices")
ends every session of the user at once, on every device.
"""

from __future__ import annotations

import hmac
import secrets
import time
from datetime import timedelta

from app.driver_sql import one_dict
from app.extensions import db
from app.models import User
from app.services.accounts.signed_in import COLUMNS, SignedInUser
from app.services.ops import audit

# The whole row (current_user answers every column from it), by primary key.
_SESSION_USER = "SELECT {} FROM users WHERE id = %s".format(  # noqa: S608 - constant names
    ", ".join(f'"{column}" AS "{attr}"' for attr, column in COLUMNS.items())
)


def user_for_session(value: str, max_age: timedelta) -> SignedInUser | None:
    """The user a session or remember-me value names, or ``None`` when the value is malformed,
    older than ``max_age`` or made before the user's sessions were last ended.

    One primary-key lookup, on the request's connection and in its transaction, that builds
    no ORM object (``SignedInUser`` makes one when something needs it); the token is compared
    in constant time.
    """
    user_id, _, rest = value.partition(":")
    token, _, signed_in = rest.partition(":")
    if not (user_id and token and signed_in.isdigit()):
        return None  # includes sessions from before session tokens existed
    if time.time() - int(signed_in) > max_age.total_seconds():
        return None
    row = one_dict(_SESSION_USER, (user_id,))
    if row is None or not hmac.compare_digest(row["session_token"], token):
        return None
    return SignedInUser(row, int(signed_in))


def end_all_sessions(user: User, *, reason: str, ip_hash: str | None = None) -> None:
    """Rotate the user's session token: every session and remember-me cookie issued so far
    stops working, on every device. Audited with ``reason``. Flushes only."""
    user.session_token = secrets.token_urlsafe(32)
    audit.record_own(
        "user.sessions_ended",
        user.id,
        ip_hash,
        reason=reason,
    )
    db.session.flush()
