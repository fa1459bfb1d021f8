"""The web shell: pages, fragments, error pages, headers."""

from __future__ import annotations

import pytest
from flask import abort

from app import create_app
from app.security import CONTENT_SECURITY_POLICY
from tests.conftest import log_in
from tests.factories import make_user

HX = {"HX-Request": "true"}


def test_home_page_is_a_full_page_with_the_tier_table(client):
    response = client.get("/")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert html.startswith("<!doctype html>")
    assert "<td>10 %</td>" in html and "<td>5 %</td>" in html and "<td>2.5 %</td>" in html
    assert "50.00 USD" in html
    assert "HX-Request" in response.headers["Vary"]


def test_home_fragment_for_htmx(client):
    response = client.get("/", headers=HX)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<html" not in html
    assert 'id="program"' in html
    assert "HX-Request" in response.headers["Vary"]


def test_boosted_navigation_gets_the_full_page(client):
    response = client.get("/", headers={**HX, "HX-Boosted": "true"})
    assert "<!doctype html>" in response.get_data(as_text=True)


def test_a_page_restored_from_history_is_the_full_page(client):
    """Back to a URL that hx-push-url pushed: htmx asks for it again (no history cache) and
    puts the answer in place of the whole body."""
    response = client.get("/", headers={**HX, "HX-History-Restore-Request": "true"})
    assert "<!doctype html>" in response.get_data(as_text=True)


def test_pages_send_a_strict_content_security_policy(client):
    response = client.get("/")
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_no_inline_scripts_in_the_layout(client):
    html = client.get("/").get_data(as_text=True)
    for tag in html.split("<script")[1:]:
        assert "src=" in tag.split(">")[0]
        assert tag.split(">", 1)[1].startswith("</script")


@pytest.fixture(scope="module")
def failing_app(app):
    """An app like the shared one, plus routes that fail in each way."""
    failing = create_app(dict(app.config))

    def boom():
        raise RuntimeError("kaboom")

    failing.add_url_rule("/_test/abort/<int:code>", "abort", lambda code: abort(code))
    failing.add_url_rule("/_test/boom", "boom", boom)
    failing.add_url_rule("/_test/echo", "echo", lambda: "ok", methods=["POST"])
    failing.config["PROPAGATE_EXCEPTIONS"] = False
    return failing


@pytest.fixture
def failing_client(failing_app):
    return failing_app.test_client()


@pytest.mark.parametrize("code", [400, 403, 404, 422])
def test_error_pages_full_and_fragment(failing_client, code):
    full = failing_client.get(f"/_test/abort/{code}")
    fragment = failing_client.get(f"/_test/abort/{code}", headers=HX)
    assert full.status_code == fragment.status_code == code
    assert "<!doctype html>" in full.get_data(as_text=True)
    fragment_html = fragment.get_data(as_text=True)
    assert "<html" not in fragment_html and f'data-status="{code}"' in fragment_html
    assert "HX-Request" in full.headers["Vary"]


def test_unknown_page_is_a_friendly_404(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert "could not find that page" in response.get_data(as_text=True)


def test_crash_renders_500_page_and_fragment(failing_client):
    full = failing_client.get("/_test/boom")
    fragment = failing_client.get("/_test/boom", headers=HX)
    assert full.status_code == fragment.status_code == 500
    assert "Something went wrong" in full.get_data(as_text=True)
    assert "kaboom" not in full.get_data(as_text=True)
    assert "<html" not in fragment.get_data(as_text=True)


def test_post_without_csrf_token_is_refused(failing_client):
    response = failing_client.post("/_test/echo", data={"x": "1"})
    assert response.status_code == 400
    assert "form has expired" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "path", ["/network?node=%00", "/network/search?q=a%00", "/r/AB%00", "/login?next=%00"]
)
def test_nul_characters_are_a_400_not_a_crash(client, path):
    from tests.conftest import log_in
    from tests.factories import make_user

    log_in(client, make_user().email)
    assert client.get(path).status_code == 400


def test_nul_in_a_form_field_is_a_400(client):
    response = client.post("/login", data={"email": "a\x00b@example.com", "password": "x"})
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("key", "labelled"), [("sk_test_fake_stripe", True), ("sk_live_x", False), ("", False)]
)
def test_signed_in_pages_say_when_stripe_runs_in_test_mode(app, client, monkeypatch, key, labelled):
    monkeypatch.setitem(app.config, "STRIPE_SECRET_KEY", key)
    make_user(email="tess@example.com")
    assert "Test mode" not in client.get("/").get_data(as_text=True)  # not to visitors
    log_in(client, "tess@example.com")
    assert ("Test mode" in client.get("/dashboard").get_data(as_text=True)) is labelled
