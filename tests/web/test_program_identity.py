"""Program identity on the web: the admin's identity, logo and terms forms (HTMX and plain,
bad input 422 with nothing changed, admins only), the logo and theme served safely, the
name and logo in the header and titles, the public terms page and accepting it again, and
the shared link's landing page saying what is offered and what a referrer earns."""

from __future__ import annotations

import io
import re

import pytest
from sqlalchemy import func, select

from app import create_app
from app.extensions import db
from app.models import AuditEntry
from app.services.program.identity import forget_identity
from app.services.program.logos import stored_logo
from app.services.program.terms import publish_terms
from tests.conftest import csrf_token, log_in
from tests.factories import make_user, set_program
from tests.images import png, svg
from tests.services.test_program_settings import form_of

HX = {"HX-Request": "true"}


def _audits(action: str) -> int:
    return db.session.scalar(select(func.count()).where(AuditEntry.action == action))


def _upload(client, data: bytes, filename: str, headers=None):
    token = csrf_token(client, "/admin/settings")
    return client.post(
        "/admin/settings/logo",
        data={"csrf_token": token, "logo": (io.BytesIO(data), filename)},
        content_type="multipart/form-data",
        headers=headers or {},
    )


def _save_identity(client, headers=None, **overrides: str):
    data = {"csrf_token": csrf_token(client, "/admin/settings"), **form_of("identity", **overrides)}
    return client.post("/admin/settings/identity", data=data, headers=headers or {})


def _title(html: str) -> str:
    return re.search(r"<title>(.*?)</title>", html, re.S).group(1)


def test_the_saved_name_is_in_the_header_and_every_title(client, admin):
    assert _save_identity(client, program_name="Acme Partners").status_code == 302
    html = client.get("/admin/settings").get_data(as_text=True)
    assert _title(html) == "Settings · Admin · Acme Partners"
    assert re.search(r'<a class="brand"[^>]*>\s*Acme Partners</a>', html)
    home = client.get("/").get_data(as_text=True)
    assert "Acme Partners" in _title(home)


def test_a_bad_colour_is_refused_with_a_message_and_changes_nothing(client, admin):
    for headers in ({}, HX):
        answer = _save_identity(client, headers, program_name="New name", accent_color="red")
        assert answer.status_code == 422
        assert "A colour as #rrggbb" in answer.get_data(as_text=True)
    forget_identity()
    html = client.get("/").get_data(as_text=True)
    assert "New name" not in html and "theme.css" not in html
    assert _audits("program.settings_changed") == 0


def test_the_accent_colour_comes_from_a_stylesheet_not_an_inline_style(client, admin):
    assert client.get("/program/theme.css").status_code == 404
    assert _save_identity(client, HX, accent_color="#1A5C3B").status_code == 200
    html = client.get("/").get_data(as_text=True)
    href = re.search(r'<link rel="stylesheet" href="(/program/theme\.css\?v=[^"]+)">', html)
    assert href and "style=" not in html
    css = client.get(href.group(1))
    assert css.status_code == 200 and css.mimetype == "text/css"
    assert css.get_data(as_text=True).strip() == ":root { --accent: #1a5c3b; }"
    assert (
        client.get(href.group(1), headers={"If-None-Match": css.headers["ETag"]}).status_code == 304
    )


@pytest.mark.parametrize(("data", "content_type"), [(png(), "image/png"), (svg(), "image/svg+xml")])
def test_an_uploaded_logo_is_served_with_its_own_type_and_safe_headers(
    client, admin, data, content_type
):
    assert client.get("/program/logo").status_code == 404
    # The file name says nothing: the content decides.
    assert _upload(client, data, "logo.gif").status_code == 302
    html = client.get("/dashboard").get_data(as_text=True)
    src = re.search(r'<a class="brand"[^>]*><img class="logo" src="([^"]+)" alt="">', html)
    assert src
    served = client.get(src.group(1))
    assert served.status_code == 200 and served.get_data() == data
    assert served.headers["Content-Type"] == content_type
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    policy = served.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "sandbox" in policy and "script" not in policy
    assert "max-age" in served.headers["Cache-Control"]
    again = client.get(src.group(1), headers={"If-None-Match": served.headers["ETag"]})
    assert again.status_code == 304
    assert _audits("program.logo_changed") == 1


@pytest.mark.parametrize(
    ("data", "filename", "message"),
    [
        (b"just some text", "logo.png", "Upload a PNG or SVG image"),
        (svg("<script>alert(1)</script>"), "logo.png", "a &lt;script&gt; element is not allowed"),
        (svg("", ' onload="alert(1)"'), "logo.svg", "event handlers (onload=) are not allowed"),
        (svg('<image href="https://evil.example/x.png"/>'), "logo.svg", "links to other files"),
        (png(5000, 5000), "logo.png", "at most 4096 by 4096 pixels"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 300_000, "big.png", "at most 200 KB"),
        (b"", "", "Choose a file to upload."),
    ],
)
def test_a_bad_upload_gets_a_clear_message_and_changes_nothing(
    client, admin, data, filename, message
):
    assert _upload(client, png(), "first.png").status_code == 302
    for headers in ({}, HX):
        answer = _upload(client, data, filename, headers)
        assert answer.status_code == 422
        body = answer.get_data(as_text=True)
        assert message in body and "Nothing was saved" in body
        assert ('id="settings-logo"' in body) and (("<html" in body) is not bool(headers))
    assert stored_logo()[0] == png()
    assert _audits("program.logo_changed") == 1


def test_an_upload_over_the_request_limit_is_refused_as_too_large_not_a_crash(client, admin):
    answer = _upload(client, b"\x89PNG\r\n\x1a\n" + b"\x00" * (3 * 1024 * 1024), "huge.png")
    assert answer.status_code == 413
    assert "What you sent is too large" in answer.get_data(as_text=True)
    assert stored_logo() is None and _audits("program.logo_changed") == 0


def test_removing_the_logo(client, admin):
    _upload(client, png(), "logo.png")
    token = csrf_token(client, "/admin/settings")
    answer = client.post("/admin/settings/logo/remove", data={"csrf_token": token}, headers=HX)
    assert answer.status_code == 200 and "Logo removed." in answer.get_data(as_text=True)
    assert stored_logo() is None and client.get("/program/logo").status_code == 404
    assert 'class="logo"' not in client.get("/").get_data(as_text=True)


def test_only_admins_change_the_identity_logo_and_terms(client):
    log_in(client, make_user().email)
    token = csrf_token(client, "/dashboard")
    for headers in ({}, HX):
        for path in (
            "/admin/settings/logo",
            "/admin/settings/logo/remove",
            "/admin/settings/terms",
        ):
            data = {"csrf_token": token, "body": "Mine now.", "logo": (io.BytesIO(png()), "x.png")}
            assert client.post(path, data=data, headers=headers).status_code == 404, path
    assert stored_logo() is None
    assert _audits("program.terms_published") == 0


def test_an_admin_publishes_new_terms_and_the_public_page_shows_them_escaped(client, admin):
    token = csrf_token(client, "/admin/settings")
    body = "# New rules\n\nBe nice <script>alert(1)</script>.\n\n- One\n- Two"
    answer = client.post(
        "/admin/settings/terms", data={"csrf_token": token, "body": body}, headers=HX
    )
    assert answer.status_code == 200 and "Published as version 2" in answer.get_data(as_text=True)
    same = client.post(
        "/admin/settings/terms", data={"csrf_token": token, "body": body}, headers=HX
    )
    assert "Nothing changed" in same.get_data(as_text=True)
    empty = client.post("/admin/settings/terms", data={"csrf_token": token, "body": " "})
    assert empty.status_code == 422 and "cannot be empty" in empty.get_data(as_text=True)
    assert _audits("program.terms_published") == 1

    client.post("/logout", data={"csrf_token": token})
    page = client.get("/terms")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Version 2, published" in html
    assert "<h2>New rules</h2>" in html and "<li>One</li><li>Two</li>" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert" not in html


def test_an_affiliate_is_told_when_the_terms_change_and_accepts_again(client):
    user = make_user()
    log_in(client, user.email)
    token = csrf_token(client, "/terms")
    client.post("/terms/accept", data={"csrf_token": token, "version": "1"})
    assert "program terms have changed" not in client.get("/dashboard").get_data(as_text=True)
    account = client.get("/account").get_data(as_text=True)
    assert re.search(r"Program terms accepted:\s*version 1 on \d{4}-\d\d-\d\d", account)

    publish_terms("Version two of the terms.", actor_id=None)
    db.session.commit()
    dashboard = client.get("/dashboard").get_data(as_text=True)
    assert "The program terms have changed (version 2)" in dashboard
    assert "a newer version is in force" in client.get("/account").get_data(as_text=True)

    stale = client.post("/terms/accept", data={"csrf_token": token, "version": "1"})
    assert stale.status_code == 422 and "read version 2" in stale.get_data(as_text=True)
    accepted = client.post(
        "/terms/accept", data={"csrf_token": token, "version": "2", "next": "/dashboard"}
    )
    assert accepted.status_code == 302 and accepted.headers["Location"] == "/dashboard"
    assert "program terms have changed" not in client.get("/dashboard").get_data(as_text=True)
    db.session.refresh(user)
    assert user.terms_version == 2 and _audits("user.terms_accepted") == 2


def test_accepting_needs_a_signed_in_user_and_a_csrf_token(client):
    token = csrf_token(client, "/login")
    answer = client.post("/terms/accept", data={"csrf_token": token, "version": "1"})
    assert "/login" in answer.headers["Location"]
    log_in(client, make_user().email)
    assert client.post("/terms/accept", data={"version": "1"}).status_code == 400
    assert _audits("user.terms_accepted") == 0


def test_the_landing_page_says_what_is_offered_and_what_a_referrer_earns(client, admin):
    _save_identity(
        client,
        program_name="Acme Partners",
        program_description="Tell friends about Acme Notes.",
        product_name="Acme Notes",
        product_url="https://acme.example/notes",
    )
    sharer = make_user(username="sharer")
    html = client.get(f"/r/{sharer.referral_code}").get_data(as_text=True)
    assert "sharer invited you to Acme Partners" in html
    assert "Tell friends about Acme Notes." in html
    assert '<a href="https://acme.example/notes" rel="noopener">Acme Notes</a>' in html
    rates = re.sub(r"\s+", " ", re.search(r'id="referrer-rates">(.*?)</p>', html, re.S).group(1))
    assert "<strong>10 %</strong>" in rates
    assert "5 % at tier 2, 2.5 % at tier 3." in rates

    set_program(is_mlm_enabled=False)
    html = client.get(f"/r/{sharer.referral_code}").get_data(as_text=True)
    rates = re.search(r'id="referrer-rates">(.*?)</p>', html, re.S).group(1)
    assert "<strong>10 %</strong>" in rates and "tier 2" not in rates


def test_the_error_page_of_a_database_outage_still_renders(app):
    down = create_app({**app.config, "SQLALCHEMY_DATABASE_URI": "postgresql://root@127.0.0.1:1/x"})
    answer = down.test_client().get("/")
    body = answer.get_data(as_text=True)
    assert answer.status_code == 500 and "Something went wrong on our side" in body
    assert "<title>" in body and "Referral program" in body
