"""Keyset pagination: an opaque cursor of (timestamp, id), and reading one from a request."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import abort, request

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Cursor:
    """Keyset position among siblings: the last (join time, id) shown."""

    created_at: datetime
    id: str

    def encode(self) -> str:
        return f"{(self.created_at - _EPOCH) // timedelta(microseconds=1)}.{self.id}"

    @classmethod
    def decode(cls, token: str) -> Cursor:
        """Raises ValueError on anything that is not a token made by ``encode``."""
        micros, _, node_id = token.partition(".")
        if not node_id or len(node_id) > 32 or not micros.lstrip("-").isdigit():
            raise ValueError("not a page cursor")
        try:
            return cls(_EPOCH + timedelta(microseconds=int(micros)), node_id)
        except OverflowError as exc:
            raise ValueError("not a page cursor") from exc


def cursor_arg(name: str) -> Cursor | None:
    """The cursor in query parameter ``name``; a token we did not make answers 400."""
    token = request.args.get(name)
    if not token:
        return None
    try:
        return Cursor.decode(token)
    except ValueError:
        abort(400)
