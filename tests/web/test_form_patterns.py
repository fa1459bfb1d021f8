"""Patterns in forms match the whole value: ``$`` would also match before a final newline."""

from __future__ import annotations

from sqlalchemy import func, select

from app.extensions import db
from app.models import User
from tests.conftest import csrf_token
from tests.factories import PASSWORD


def test_a_username_with_a_trailing_newline_is_refused(client):
    response = client.post(
        "/register",
        data={
            "csrf_token": csrf_token(client, "/register"),
            "username": "newbie\n",
            "email": "newbie@example.com",
            "password": PASSWORD,
            "confirm": PASSWORD,
        },
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 422
    assert "Use letters, digits, dots, dashes or underscores." in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(User)) == 0
