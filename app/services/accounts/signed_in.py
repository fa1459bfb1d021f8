"""The signed-in user as ``current_user`` sees them: their row, read with the session check,
and the ORM ``User`` only when something needs one.

Most requests only ask who is signed in (``id``, ``is_admin``, ``username`` for the header):
building an ORM object for that cost about as much as the request's own statement (the tree's
expand fragment). ``SignedInUser`` answers column attributes from the row; anything else (a
relationship, a method of ``User``, an assignment, a service that flushes or refreshes it)
attaches a ``User`` made from the same row to the session, without a second query, and from
then on every attribute is that object's. If the session already holds this user (another
query loaded them, or a change was made through another instance), that object is used: the
row is never read in place of a newer state.
"""

from __future__ import annotations

from typing import Any

from flask_login import UserMixin
from sqlalchemy import inspect
from sqlalchemy.orm import make_transient_to_detached

from app.extensions import db
from app.models import User

# Attribute name -> column name, for every column of users.
COLUMNS: dict[str, str] = {attr.key: attr.columns[0].name for attr in inspect(User).column_attrs}
_OWN = frozenset({"_values", "_user", "signed_in_at"})


class SignedInUser(UserMixin):
    """``current_user``: a ``User`` to every reader (``isinstance`` included), backed by one
    row until an ORM object is needed."""

    __slots__ = ("_user", "_values", "signed_in_at")

    def __init__(self, values: dict[str, Any], signed_in_at: int) -> None:
        object.__setattr__(self, "_values", values)
        object.__setattr__(self, "_user", None)
        object.__setattr__(self, "signed_in_at", signed_in_at)

    @property  # type: ignore[misc]
    def __class__(self):
        # isinstance(current_user, User) holds, as it did with the ORM object.
        return User

    def orm(self) -> User:
        """The ORM ``User`` in the current session: the one it holds, or one made from the
        row and attached (no query)."""
        user = self._in_session()
        if user is None:
            user = User(**self._values)
            make_transient_to_detached(user)
            db.session.add(user)
            user.signed_in_at = self.signed_in_at
            object.__setattr__(self, "_user", user)
        return user

    def _in_session(self) -> User | None:
        user = self._user
        if user is None:
            key = db.session.identity_key(User, self._values["id"])
            user = db.session.identity_map.get(key)
            if user is not None:
                user.signed_in_at = self.signed_in_at
                object.__setattr__(self, "_user", user)
        return user

    def __getattr__(self, name: str) -> Any:
        # Called only for what the class does not define: columns, then everything of User.
        user = self._in_session()
        if user is None:
            if name in COLUMNS:
                return self._values[name]
            user = self.orm()
        return getattr(user, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _OWN:
            object.__setattr__(self, name, value)
            if self._user is not None and name == "signed_in_at":
                self._user.signed_in_at = value
            return
        setattr(self.orm(), name, value)

    def get_id(self) -> str:
        return f"{self.id}:{self.session_token}:{self.signed_in_at}"

    def __repr__(self) -> str:
        return f"<User {self.username} {self.id}>"
