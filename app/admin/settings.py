"""The program settings page: one form per section, each saved on its own (HTMX swaps the
section; without JavaScript the page posts and redirects). A change with consequences is
shown first and saved only once confirmed. The rules are ``app/services/program/settings.py``.
The logo and the terms have forms of their own (app/admin/identity.py) on the same page."""

from __future__ import annotations

import hashlib

from flask import flash, request, url_for
from flask_login import current_user

from app.admin import bp
from app.extensions import db
from app.htmx import redirect_to, render, wants_fragment
from app.services.program import settings as program_settings
from app.services.program.identity import program_identity
from app.services.program.program import get_settings
from app.services.program.settings import SECTIONS, SettingsRefused
from app.services.program.terms import current_terms

PAGE, SECTION = "admin/settings.html", "admin/_settings_section.html"
SECTION_NAMES = "any(" + ", ".join(SECTIONS) + ")"


def _section(key: str, form: dict[str, str] | None = None, **state: object) -> dict:
    """What one section's form shows: the stored values, or those just submitted."""
    title, fields = SECTIONS[key]
    stored = get_settings()
    values = {
        f.name: (
            form.get(f.name, "")
            if form is not None
            else program_settings.stored(getattr(stored, f.name), f.kind)
        )
        for f in fields
    }
    return {
        "key": key,
        "title": title,
        "fields": fields,
        "values": values,
        "errors": {},
        "notes": [],
        "message": None,
        **state,
    }


def identity_parts(logo: dict | None = None, terms: dict | None = None) -> dict:
    """The logo's and the terms' forms: as stored, or in the state given (errors, a message,
    the text just submitted)."""
    current = current_terms()
    return {
        "logo": {"identity": program_identity(), "error": None, "message": None, **(logo or {})},
        "terms": {
            "current": current,
            "body": current.body if current else "",
            "error": None,
            "message": None,
            **(terms or {}),
        },
    }


def settings_page(
    fragment: str,
    status: int = 200,
    *,
    logo: dict | None = None,
    terms: dict | None = None,
    **context: object,
):
    """The whole page (or ``fragment`` for HTMX): the sections as stored unless given, the
    logo's and terms' forms in the state given (``identity_parts``)."""
    if "sections" not in context and not wants_fragment():
        context["sections"] = [_section(key) for key in SECTIONS]
    return render(PAGE, fragment, status=status, **identity_parts(logo, terms), **context)


def _answer(section: dict, status: int):
    """The section alone for HTMX, else the whole page with this section in its state."""
    sections = [section if key == section["key"] else _section(key) for key in SECTIONS]
    return settings_page(SECTION, status, section=section, sections=sections)


def _digest(notes: list[str]) -> str:
    """What a confirmation agrees to: the consequences shown. Edited values with other
    consequences are shown again before they are saved."""
    return hashlib.sha256("\n".join(notes).encode()).hexdigest()[:16]


@bp.get("/settings")
def settings():
    return settings_page(PAGE)


@bp.post(f"/settings/<{SECTION_NAMES}:section>")
def save_settings(section: str):
    """Save one section. Bad input: 422 with each field's message, nothing changed. A change
    with consequences: shown (200), saved only when posted again with ``confirm``."""
    form = request.form.to_dict()
    try:
        values = program_settings.parse_section(section, form)
        notes = program_settings.consequences(program_settings.changes(values))
        if notes and form.get("confirm") != _digest(notes):
            return _answer(_section(section, form, notes=notes, confirm=_digest(notes)), 200)
        changed = program_settings.save_section(section, values, actor_id=current_user.id)
    except SettingsRefused as refused:
        db.session.rollback()
        return _answer(_section(section, form, errors=refused.errors), 422)
    db.session.commit()
    message = "Saved." if changed else "Nothing changed."
    if wants_fragment():
        return _answer(_section(section, message=message), 200)
    flash(f"{SECTIONS[section][0]}: {message}", "success")
    return redirect_to(url_for("admin.settings"))
