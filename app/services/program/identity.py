"""The program's identity as affiliates see it: its name (header, page titles, mails), what it
offers, its logo and accent colour, and the terms version in force. Read once per request
(or app context, for a job) and kept in ``g``; saving a setting forgets it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from urllib.parse import urlsplit

from flask import current_app, g, has_app_context
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from app.extensions import db
from app.models import ProgramTerms, ReferralProgramSettings
from app.models.program import DEFAULT_PROGRAM_NAME

_CACHE_KEY = "program_identity"
_COLOUR = re.compile(r"#[0-9a-fA-F]{6}\Z")
# Buttons draw white text on the accent colour: WCAG AA for normal text.
MIN_CONTRAST = Decimal("4.5")


@dataclass(frozen=True)
class Identity:
    name: str
    description: str | None
    product_name: str | None
    product_url: str | None
    accent_color: str | None
    logo_type: str | None
    logo_digest: str | None
    terms_version: int


def _load() -> Identity:
    s = ReferralProgramSettings
    current_terms = select(func.coalesce(func.max(ProgramTerms.version), 0)).scalar_subquery()
    row = db.session.execute(
        select(
            s.program_name,
            s.program_description,
            s.product_name,
            s.product_url,
            s.accent_color,
            s.logo_type,
            s.logo_digest,
            current_terms,
        )
    ).one()
    return Identity(*row)


# What pages show when the database cannot be read (the error page of an outage included).
FALLBACK = Identity(DEFAULT_PROGRAM_NAME, None, None, None, None, None, None, 0)


def program_identity() -> Identity:
    """The identity, read at most once per app context (one statement). If the database
    cannot be read, the defaults (not kept): every page's header and title need it, and the
    error page of an outage must not fail too."""
    if not has_app_context():
        return _load()
    if _CACHE_KEY not in g:
        try:
            setattr(g, _CACHE_KEY, _load())
        except SQLAlchemyError as exc:
            current_app.logger.warning("program identity unavailable: %s", exc)
            return FALLBACK
    return getattr(g, _CACHE_KEY)


def forget_identity() -> None:
    """Drop the cached identity: the next read sees a change made in this context."""
    if has_app_context():
        g.pop(_CACHE_KEY, None)


def program_name() -> str:
    """The configured program name (``DEFAULT_PROGRAM_NAME`` until an admin sets one)."""
    return program_identity().name or DEFAULT_PROGRAM_NAME


# Parsers for the identity section of the settings page (app/services/program/settings.py):
# each returns the value to store or raises ValueError with what to type.


def parse_name(raw: str) -> str:
    name = " ".join(raw.split())
    if not name:
        raise ValueError("Enter the program's name.")
    if len(name) > 80:
        raise ValueError("At most 80 characters.")
    return name


def optional_text(limit: int):
    def parse(raw: str) -> str | None:
        text = raw.strip()
        if len(text) > limit:
            raise ValueError(f"At most {limit} characters.")
        return text or None

    return parse


def parse_url(raw: str) -> str | None:
    url = raw.strip()
    if not url:
        return None
    problem = "A web address starting with https://, like https://example.com/app."
    try:
        parts = urlsplit(url)  # ValueError for a broken IPv6 host, in its own words
        hostname = parts.hostname
    except ValueError:
        raise ValueError(problem) from None
    if (
        parts.scheme not in ("http", "https")
        or not hostname
        or any(c.isspace() for c in url)
        or len(url) > 500
    ):
        raise ValueError(problem)
    return url


def _luminance(colour: str) -> Decimal:
    """WCAG relative luminance of #rrggbb, in Decimal (no float in what is compared)."""
    channels = []
    for i in (1, 3, 5):
        c = Decimal(int(colour[i : i + 2], 16)) / 255
        channels.append(
            c / Decimal("12.92")
            if c <= Decimal("0.03928")
            else ((c + Decimal("0.055")) / Decimal("1.055")) ** Decimal("2.4")
        )
    r, g_, b = channels
    return Decimal("0.2126") * r + Decimal("0.7152") * g_ + Decimal("0.0722") * b


def contrast_with_white(colour: str) -> Decimal:
    return Decimal("1.05") / (_luminance(colour) + Decimal("0.05"))


def parse_colour(raw: str) -> str | None:
    colour = raw.strip()
    if not colour:
        return None
    if not _COLOUR.match(colour):
        raise ValueError("A colour as #rrggbb, like #2f5bea (empty: the default blue).")
    colour = colour.lower()
    contrast = contrast_with_white(colour)
    if contrast < MIN_CONTRAST:
        raise ValueError(
            f"Buttons show white text on this colour and it would be hard to read "
            f"(contrast {contrast.quantize(Decimal('0.1'), ROUND_DOWN)}:1, at least "
            f"{MIN_CONTRAST}:1 is needed): choose a darker one."
        )
    return colour
