"""The program's logo and terms on the settings page: a logo upload (checked by content,
``app/services/program/logos.py``) and removal, and publishing a new terms version. Each form
swaps its own section with HTMX; without JavaScript it posts and redirects. Bad input: 422
with the reason, nothing changed."""

from __future__ import annotations

from flask import flash, request, url_for
from flask_login import current_user

from app.admin import bp
from app.admin.settings import settings_page
from app.extensions import db
from app.htmx import redirect_to, wants_fragment
from app.models.program import MAX_LOGO_BYTES
from app.services.program.logos import LogoRefused, remove_logo, save_logo
from app.services.program.terms import TermsRefused, publish_terms

LOGO, TERMS = "admin/_logo_section.html", "admin/_terms_section.html"


def _done(fragment: str, part: str, message: str):
    db.session.commit()
    if wants_fragment():
        return settings_page(fragment, **{part: {"message": message}})
    flash(message, "success")
    return redirect_to(url_for("admin.settings"))


def _refused(fragment: str, part: str, state: dict):
    db.session.rollback()
    return settings_page(fragment, 422, **{part: state})


@bp.post("/settings/logo")
def upload_logo():
    upload = request.files.get("logo")
    # One byte past the limit is enough to know the file is too big.
    data = upload.stream.read(MAX_LOGO_BYTES + 1) if upload else b""
    try:
        save_logo(data, actor_id=current_user.id)
    except LogoRefused as refused:
        return _refused(LOGO, "logo", {"error": str(refused)})
    return _done(LOGO, "logo", "Logo saved.")


@bp.post("/settings/logo/remove")
def delete_logo():
    removed = remove_logo(actor_id=current_user.id)
    return _done(LOGO, "logo", "Logo removed." if removed else "There was no logo.")


@bp.post("/settings/terms")
def save_terms():
    body = request.form.get("body", "")
    try:
        terms = publish_terms(body, actor_id=current_user.id)
    except TermsRefused as refused:
        return _refused(TERMS, "terms", {"error": str(refused), "body": body})
    message = (
        f"Published as version {terms.version}: affiliates are asked to accept it."
        if terms
        else "Nothing changed: this is the text in force."
    )
    return _done(TERMS, "terms", message)
