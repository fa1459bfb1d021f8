"""The session check reads the user's row, not an ORM object, and current_user still behaves
as the ORM ``User`` for everything that reads or changes it."""

from __future__ import annotations

import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from sqlalchemy import event, select

from app.extensions import db
from app.models import User
from app.services.accounts.sessions import end_all_sessions, user_for_session
from app.services.accounts.signed_in import SignedInUser
from tests.factories import make_user

DAY = timedelta(days=1)


def _value(user: User, signed_in: int | None = None) -> str:
    return f"{user.id}:{user.session_token}:{signed_in or int(time.time())}"


@contextmanager
def _statements():
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:
        seen.append(statement.split()[0].upper())

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


def test_the_session_check_reads_a_row_and_builds_no_orm_user():
    user = make_user(username="reader")
    value = _value(user)
    db.session.expunge_all()
    signed_in = user_for_session(value, DAY)
    assert type(signed_in) is SignedInUser
    assert isinstance(signed_in, User)
    assert (signed_in.id, signed_in.username, signed_in.is_admin) == (user.id, "reader", False)
    assert signed_in.get_id() == value
    assert not any(isinstance(obj, User) for obj in db.session.identity_map.values())


def test_the_checks_still_refuse_a_rotated_token_an_old_sign_in_and_a_wrong_token():
    user = make_user()
    assert user_for_session(_value(user, int(time.time()) - 2 * 86400), DAY) is None
    assert user_for_session(f"{user.id}:{'x' * 32}:{int(time.time())}", DAY) is None
    value = _value(user)
    end_all_sessions(user, reason="test")
    db.session.commit()
    assert user_for_session(value, DAY) is None


def test_a_change_through_the_signed_in_user_is_saved_without_reloading_the_row():
    user = make_user()
    user_id, value = user.id, _value(user)
    db.session.expunge_all()
    signed_in = user_for_session(value, DAY)
    copied = datetime(2026, 1, 2, tzinfo=UTC)
    with _statements() as statements:
        signed_in.link_copied_at = copied  # attaches a User made from the row
        db.session.commit()
    assert statements == ["UPDATE"]
    stored = db.session.scalar(select(User.link_copied_at).where(User.id == user_id))
    assert stored == copied


def test_the_session_s_own_instance_of_the_user_is_read_in_place_of_the_row():
    user = make_user(username="before")
    user_id, value = user.id, _value(user)
    db.session.expunge_all()
    signed_in = user_for_session(value, DAY)
    loaded = db.session.get(User, user_id)
    loaded.username = "after"
    assert signed_in.username == "after"
    assert signed_in.orm() is loaded
