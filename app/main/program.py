"""The program's public identity: its terms (and accepting them), its logo, and the
stylesheet that carries its accent colour (a stylesheet, since the CSP forbids inline
styles). The logo and stylesheet URLs carry a version (``v``), so they are cached long and
revalidated by ETag."""

from __future__ import annotations

from flask import Response, abort, flash, redirect, request, url_for
from flask_login import current_user, login_required

from app.extensions import db
from app.htmx import render
from app.main import bp
from app.services.accounts.visitors import request_ip_hash
from app.services.network.referral_links import safe_next
from app.services.program.identity import program_identity
from app.services.program.logos import stored_logo
from app.services.program.rates import is_whole
from app.services.program.terms import (
    TermsRefused,
    accept_terms,
    blocks,
    current_terms,
    needs_acceptance,
)

# An SVG opened on its own is a document: nothing in it may run or load (its inline styles
# are its own presentation).
LOGO_POLICY = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
CACHE = "public, max-age=86400"


def _terms_page(status: int = 200, problem: str | None = None) -> Response:
    terms = current_terms()
    return render(
        "main/terms.html",
        "main/terms.html",
        status=status,
        terms=terms,
        blocks=blocks(terms.body) if terms else [],
        must_accept=needs_acceptance(current_user),
        next_url=safe_next(request.values.get("next")),
        problem=problem,
    )


@bp.get("/terms")
def terms():
    return _terms_page()


@bp.post("/terms/accept")
@login_required
def accept():
    """Accept the terms in force; the version read is sent with the form, so a text that
    changed meanwhile is not accepted unseen (422, nothing recorded)."""
    version = request.form.get("version", "")
    try:
        accept_terms(
            current_user,
            int(version) if is_whole(version) else 0,
            ip_hash=request_ip_hash(),
        )
    except TermsRefused as refused:
        db.session.rollback()
        return _terms_page(422, str(refused))
    db.session.commit()
    flash(f"Thank you: you accepted version {version} of the program terms.", "success")
    return redirect(safe_next(request.form.get("next")) or url_for("main.terms"))


def _cached(response: Response, etag: str) -> Response:
    response.set_etag(etag)
    response.headers["Cache-Control"] = CACHE
    return response.make_conditional(request)


@bp.get("/program/logo")
def logo():
    found = stored_logo()
    if found is None:
        abort(404)
    data, content_type, digest = found
    response = Response(data, content_type=content_type)
    response.headers["Content-Security-Policy"] = LOGO_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Disposition"] = (
        f'inline; filename="logo.{"png" if content_type == "image/png" else "svg"}"'
    )
    return _cached(response, digest)


@bp.get("/program/theme.css")
def theme():
    colour = program_identity().accent_color
    if colour is None:
        abort(404)
    response = Response(f":root {{ --accent: {colour}; }}\n", mimetype="text/css")
    return _cached(response, colour.lstrip("#"))
