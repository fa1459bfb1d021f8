"""Shared referral links: the URL, the QR code, click counting and attribution."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit

import segno
from flask import current_app, url_for
from sqlalchemy.dialects.postgresql import insert

from app.extensions import db
from app.models import ReferralClick, User

ATTRIBUTION_COOKIE = "ref"
_USER_AGENT_LENGTH = 512


def share_url(user: User) -> str:
    return current_app.config["PUBLIC_BASE_URL"] + url_for("links.landing", code=user.referral_code)


def record_click(referrer_id: str, visitor_hash: str, user_agent: str) -> bool:
    """Count a visit once per visitor per day (``ON CONFLICT DO NOTHING``); True if new."""
    result = db.session.execute(
        insert(ReferralClick)
        .values(
            referrer_id=referrer_id,
            visitor_hash=visitor_hash,
            user_agent=user_agent[:_USER_AGENT_LENGTH],
            clicked_on=datetime.now(UTC).date(),
        )
        .on_conflict_do_nothing(index_elements=["referrer_id", "clicked_on", "visitor_hash"])
    )
    return result.rowcount == 1


def safe_next(target: str | None) -> str | None:
    """``target`` if it is a path on this site, else ``None`` (no open redirects).

    Backslashes and control characters are refused anywhere: browsers drop tabs and newlines
    from URLs and read a backslash as ``/``, which would turn ``/<tab>/evil.example`` into
    ``//evil.example``.
    """
    if not target or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def qr_code(url: str, kind: str) -> bytes:
    """The link as a QR code, ``svg`` or ``png``."""
    buffer = io.BytesIO()
    qr = segno.make(url, error="m")
    if kind == "svg":
        qr.save(buffer, kind="svg", scale=6, border=2, xmldecl=False, title="Referral link")
    else:
        qr.save(buffer, kind="png", scale=10, border=2)
    return buffer.getvalue()


def share_links(url: str) -> list[tuple[str, str]]:
    """(label, href) pairs to share the link by email and on social networks."""
    text = "Join me on this program:"
    encoded, message = quote(url, safe=""), quote(f"{text} {url}", safe="")
    return [
        ("Email", f"mailto:?subject={quote('An invitation', safe='')}&body={message}"),
        ("X", f"https://twitter.com/intent/tweet?text={quote(text, safe='')}&url={encoded}"),
        ("LinkedIn", f"https://www.linkedin.com/sharing/share-offsite/?url={encoded}"),
        ("WhatsApp", f"https://wa.me/?text={message}"),
    ]
