"""Jobs that prove the worker's wiring."""

from __future__ import annotations

from sqlalchemy import text

from app.extensions import db


def ping(token: str) -> dict[str, object]:
    """A no-op round trip: echoes ``token`` and proves the job ran inside the app context."""
    return {"token": token, "database": db.session.execute(text("SELECT 1")).scalar_one()}
