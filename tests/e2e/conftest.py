"""Playwright on Debian's Chromium against the app served on loopback."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from tests.services_under_test import ROOT, unavailable

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="session")
def live_server(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture
def public_base_url(app, live_server):
    """Stripe sends the browser back to PUBLIC_BASE_URL: the live server here."""
    saved = app.config["PUBLIC_BASE_URL"]
    app.config["PUBLIC_BASE_URL"] = live_server
    yield live_server
    app.config["PUBLIC_BASE_URL"] = saved


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists() or not shutil.which(CHROMIUM):
        unavailable(f"{CHROMIUM} not installed (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    yield page
    context.close()


def screenshot(page, name: str) -> Path:
    path = ARTIFACTS / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    # caret="initial": Playwright's caret-hiding style, refused by the CSP, would make later
    # htmx swaps report blocked inline styles in the console.
    page.screenshot(path=str(path), full_page=True, caret="initial")
    return path


# Every visible form control, scrolled into view (through any scrolling box it sits in), must
# lie inside the viewport and be the element found at its own centre (nothing covers it).
_UNREACHABLE = """() => {
  const controls = document.querySelectorAll('input:not([type=hidden]), select, textarea, button');
  return [...controls].filter((el) => el.checkVisibility()).flatMap((el) => {
    el.scrollIntoView({block: 'center', inline: 'center'});
    const box = el.getBoundingClientRect();
    const hit = document.elementFromPoint(box.left + box.width / 2, box.top + box.height / 2);
    const inside = box.left >= 0 && box.right <= window.innerWidth;
    return inside && el.contains(hit) ? [] : [el.outerHTML.slice(0, 120)];
  });
}"""


def unreachable_controls(page) -> list[str]:
    """The form controls a visitor could not reach on this page at its viewport's width."""
    return page.evaluate(_UNREACHABLE)
