"""The admin health page in a browser at phone width: both panels swap in after the page
(under the strict CSP), and a failed job is retried from its button."""

from __future__ import annotations

import pytest

from app.jobs.queueing import get_queue
from tests.e2e.conftest import screenshot
from tests.e2e.test_commission_journey import _log_in
from tests.factories import make_user
from tests.signing import run_jobs
from tests.web.test_admin_health_panels import fail_loudly

pytestmark = pytest.mark.browser


def test_panels_load_after_the_page_and_a_failed_job_is_retried_at_360_px(app, live_server, page):
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.set_viewport_size({"width": 360, "height": 800})
    job = get_queue().enqueue(fail_loudly, "e2e")
    run_jobs(app)
    admin = make_user(is_admin=True)
    _log_in(page, live_server, admin.email)
    page.goto(f"{live_server}/admin/health")
    page.get_by_role("heading", name="Slowest statements").wait_for()
    page.get_by_text("ValueError: no such sale: e2e").wait_for()
    assert page.url == f"{live_server}/admin/health"
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert errors == []
    screenshot(page, "admin-health-360")

    page.locator(f"#failed-{job.id}").get_by_role("button", name="Retry").click()
    page.get_by_text(f"Job {job.id} retried: back in its queue.").wait_for()
    assert get_queue().job_ids == [job.id]
    assert errors == []
