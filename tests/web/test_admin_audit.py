"""The audit log viewer: who may see it, each filter, keyset pages, bad filters (422), the CSV
(streamed, formula-safe, never cached, itself audited) and the indexes that serve it."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text

from app.extensions import db
from app.models import AuditEntry
from app.services.ops.audit_log import PAGE_SIZE
from tests.conftest import log_in
from tests.factories import make_user

HX = {"HX-Request": "true"}
NOW = datetime.now(UTC).replace(microsecond=0)


def _entry(action: str, *, days_ago: float = 0, actor=None, subject=None, **details) -> AuditEntry:
    entry = AuditEntry(
        action=action,
        actor_id=actor.id if actor else None,
        subject_type=subject[0] if subject else None,
        subject_id=subject[1] if subject else None,
        details=details,
        created_at=NOW - timedelta(days=days_ago),
    )
    db.session.add(entry)
    db.session.commit()
    return entry


def _listed(response) -> list[int]:
    html = response.get_data(as_text=True)
    return [int(part.split('"')[0]) for part in html.split('data-audit="')[1:]]


def test_audit_pages_are_a_404_for_non_admins_and_send_visitors_to_log_in(client):
    _entry("payout.approved")
    for path in ("/admin/audit", "/admin/audit.csv", "/admin/audit?action=payout"):
        assert "/login" in client.get(path).headers["Location"], path
        assert "/login" in client.get(path, headers=HX).headers["HX-Redirect"], path
    log_in(client, make_user().email)
    for path in ("/admin/audit", "/admin/audit.csv", "/admin/audit?action=payout"):
        for headers in ({}, HX):
            assert client.get(path, headers=headers).status_code == 404, path
    assert db.session.scalar(select(func.count()).select_from(AuditEntry).where(
        AuditEntry.action == "audit.exported")) == 0  # fmt: skip


def test_filters_by_actor_action_subject_and_dates(client, admin):
    bob = make_user()
    by_bob = _entry("payout.requested", actor=bob, subject=("payout", "p1"), amount="10.00")
    approved = _entry("payout.approved", actor=admin, subject=("payout", "p1"), days_ago=3)
    other = _entry("user.suspended", actor=admin, subject=("user", bob.id), days_ago=10)
    system = _entry("payouts.scheduled", days_ago=20)

    def listed(query: str) -> list[int]:
        response = client.get(f"/admin/audit?{query}")
        assert response.status_code == 200, query
        return _listed(response)

    assert listed(f"actor={bob.username.upper()}") == [by_bob.id]
    assert listed(f"actor={admin.email}") == [approved.id, other.id]
    assert listed("action=payout.") == [by_bob.id, approved.id]
    assert listed("action=payout") == [by_bob.id, approved.id, system.id]
    assert listed("action=payout_") == []  # "_" is a character, not a LIKE wildcard
    assert listed("subject_type=payout&subject_id=p1") == [by_bob.id, approved.id]
    assert listed("subject_type=user") == [other.id]
    day = lambda n: (NOW - timedelta(days=n)).date().isoformat()  # noqa: E731
    assert listed(f"created_from={day(11)}&created_to={day(2)}") == [approved.id, other.id]
    assert listed(f"created_to={day(20)}") == [system.id]


def test_details_are_shown_readably(client, admin):
    _entry("settings.changed", actor=admin, field_name="max_tier", old={"value": 3}, new=5)
    html = client.get("/admin/audit").get_data(as_text=True)
    assert "<dt>field name</dt>" in html and "<dd>max_tier</dd>" in html
    assert '<code>{"value": 3}</code>' in html and "<dd>5</dd>" in html


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("actor=nobody-here", "No user has this username or email."),
        ("action=payout%25", "Letters, digits and . _ : - only."),
        ("subject_id=p1", "Give the subject type too"),
        ("created_from=2026-05-02&created_to=2026-05-01", "The end date is before the start date."),
        ("created_from=yesterday", "Not a valid date value."),
        ("action=" + "a" * 65, "Field cannot be longer than 64 characters."),
    ],
)
def test_bad_filters_answer_422_with_the_reason(client, admin, query, message):
    _entry("payout.approved")
    for headers in ({}, HX):
        response = client.get(f"/admin/audit?{query}", headers=headers)
        assert response.status_code == 422
        html = response.get_data(as_text=True)
        assert message in html and 'data-audit="' not in html
        assert ("<h1>" in html) is (headers == {})
        assert client.get(f"/admin/audit.csv?{query}").status_code == 422


def test_a_forged_cursor_answers_400(client, admin):
    assert client.get("/admin/audit?before=123.abc").status_code == 400
    assert client.get("/admin/audit?before=nonsense").status_code == 400


def test_keyset_pages_cover_every_entry_once_newest_first(client, admin):
    # Two entries share each timestamp: the id breaks the tie.
    ids = [_entry("payout.approved", days_ago=i // 2).id for i in range(PAGE_SIZE * 2 + 3)]
    _entry("user.suspended")
    expected = sorted(ids, key=lambda i: (ids.index(i) // 2, -i))
    seen, url, pages = [], "/admin/audit?action=payout.", 0
    while url:
        response = client.get(url, headers=HX)
        assert response.status_code == 200 and "<h1>" not in response.get_data(as_text=True)
        seen += _listed(response)
        pages += 1
        html = response.get_data(as_text=True)
        url = html.split('>Older entries<')[0].rsplit('href="', 1)[1].split('"')[0].replace(
            "&amp;", "&") if "Older entries" in html else None  # fmt: skip
    assert pages == 3 and seen == expected
    assert "action=payout." in client.get("/admin/audit?action=payout.").get_data(as_text=True)


def test_the_csv_is_streamed_formula_safe_uncached_and_audited(client, admin):
    _entry("payout.rejected", actor=admin, subject=("payout", "p9"), reason='=HYPERLINK("x")')
    _entry("user.suspended", days_ago=1)
    response = client.get("/admin/audit.csv?action=payout")
    assert response.status_code == 200 and response.was_streamed
    assert response.headers["Cache-Control"] == "no-store"
    assert response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0][:3] == ["id", "created_at", "action"]
    assert [row[2] for row in rows[1:]] == ["payout.rejected"]
    assert rows[1][4] == admin.username and rows[1][6] == "p9"
    assert rows[1][8] == '{"reason": "=HYPERLINK(\\"x\\")"}'  # JSON starts with "{": inert
    exported = db.session.scalars(
        select(AuditEntry).where(AuditEntry.action == "audit.exported")
    ).one()
    assert exported.actor_id == admin.id and exported.details == {"filters": {"action": "payout"}}


def test_a_cell_starting_like_a_formula_is_quoted(client, admin):
    _entry("=cmd|' /C calc'!A0", subject=("-x", "@y"))
    response = client.get("/admin/audit.csv?subject_type=-x")
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[1][2] == "'=cmd|' /C calc'!A0" and rows[1][5:7] == ["'-x", "'@y"]


def test_each_filter_pages_through_an_index(admin):
    """With sequential scans off, the plan of each filtered page is an index scan."""
    for query, index in [
        ("SELECT id FROM audit_log ORDER BY created_at DESC, id DESC LIMIT 51",
         "ix_audit_log_created_at_id"),
        ("SELECT id FROM audit_log WHERE actor_id = 'x' ORDER BY created_at DESC, id DESC "
         "LIMIT 51", "ix_audit_log_actor"),
        ("SELECT id FROM audit_log WHERE subject_type = 'payout' AND subject_id = 'p' "
         "ORDER BY created_at DESC, id DESC LIMIT 51", "ix_audit_log_subject"),
        ("SELECT id FROM audit_log WHERE action LIKE 'payout.%' ORDER BY created_at DESC, "
         "id DESC LIMIT 51", "ix_audit_log_action_pattern"),
    ]:  # fmt: skip
        db.session.execute(text("SET LOCAL enable_seqscan = off"))
        db.session.execute(text("SET LOCAL enable_indexscan = on"))
        plan = "\n".join(db.session.scalars(text(f"EXPLAIN {query}")))
        db.session.rollback()
        assert index in plan, plan
