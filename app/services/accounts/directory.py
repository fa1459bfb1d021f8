"""Finding users for admins: by username prefix or by exact email, index-backed."""

from __future__ import annotations

from sqlalchemy import func, or_, select

from app.extensions import db
from app.models import User
from app.services.network.downline_search import like_prefix, normalize_query

LIMIT = 50


def find_users(raw_query: str | None) -> list[User]:
    """Up to ``LIMIT`` users whose username starts with the query or whose email is it."""
    query = normalize_query(raw_query)
    if not query:
        return []
    return list(
        db.session.scalars(
            select(User)
            .where(
                or_(
                    func.lower(User.username).like(like_prefix(query), escape="\\"),
                    func.lower(User.email) == query,
                )
            )
            .order_by(func.lower(User.username))
            .limit(LIMIT)
        )
    )


def find_user(username_or_email: str) -> User | None:
    """The user with exactly this username or email (either in any case)."""
    value = username_or_email.strip().lower()
    if not value:
        return None
    return db.session.scalars(
        select(User).where(or_(func.lower(User.username) == value, func.lower(User.email) == value))
    ).first()
