"""The admin health page: checks in full, and a way out for parked provider events."""

from __future__ import annotations

from datetime import timedelta

from redis import Redis
from sqlalchemy import func, select, text

from app.extensions import db
from app.jobs.mail import send_mail_job
from app.jobs.queueing import get_queue, get_redis
from app.jobs.webhooks import DRAIN_FLAG
from app.models import AuditEntry, Sale, WebhookEvent
from app.services.mail.outbox import queue_mail
from app.services.money.webhooks import (
    MAX_ATTEMPTS,
    claim_events,
    dismiss_parked_event,
    has_stale_events,
    process_events,
)
from app.services.ops import audit
from tests.conftest import csrf_token, log_in
from tests.factories import make_chain, make_user
from tests.signing import run_jobs, stripe_checkout, stripe_event

HX = {"HX-Request": "true"}
ERROR = "KeyError: 'amount_total' (a provider bug, fixed since)"


def _parked(payload: bytes = b'{"type": "charge.refunded"}', event_id: str = "evt_1") -> int:
    """An event that failed ``MAX_ATTEMPTS`` times an hour ago."""
    return db.session.execute(
        text(
            "INSERT INTO webhook_events (provider, event_id, event_type, payload, received_at, "
            "attempts, last_error) VALUES ('stripe', :event_id, 'checkout.session.completed', "
            "CAST(:payload AS jsonb), now() - interval '1 hour', :attempts, :error) RETURNING id"
        ),
        {
            "event_id": event_id,
            "payload": payload.decode(),
            "attempts": MAX_ATTEMPTS,
            "error": ERROR,
        },
    ).scalar_one()


def _decide(client, event_pk: int, decision: str, headers=None):
    token = csrf_token(client, "/admin/health")
    return client.post(
        f"/admin/webhooks/{event_pk}/{decision}", data={"csrf_token": token}, headers=headers or {}
    )


def _audited(action: str) -> list[AuditEntry]:
    return list(db.session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def test_the_health_page_shows_checks_in_full_and_the_parked_events(
    app, client, admin, monkeypatch
):
    event_pk = _parked()
    db.session.commit()
    monkeypatch.setitem(app.extensions, "redis", Redis.from_url("redis://127.0.0.1:1/0"))
    page = client.get("/admin/health").get_data(as_text=True)
    assert "ConnectionError: Error 111 connecting to 127.0.0.1:1" in page
    assert f'id="parked-{event_pk}"' in page
    assert "KeyError: &#39;amount_total&#39;" in page
    assert f'action="/admin/webhooks/{event_pk}/retry"' in page
    assert f'action="/admin/webhooks/{event_pk}/dismiss"' in page
    assert 'href="/admin/health"' in client.get("/admin/").get_data(as_text=True)


def test_the_health_page_shows_a_mail_given_up_and_why(app, client, admin, smtp_server):
    assert '<dd data-mail="state">ok</dd>' in client.get("/admin/health").get_data(as_text=True)
    smtp_server.refuse, smtp_server.refusal = 1, "550 5.1.1 No such mailbox"
    mail_id = queue_mail(make_user(), "welcome").id
    db.session.commit()
    assert send_mail_job(mail_id) == "dead"
    page = client.get("/admin/health").get_data(as_text=True)
    assert '<dd data-mail="dead">1</dd>' in page
    assert "alarm" in page.split('id="health-mail"')[1].split("</section>")[0]
    assert "No such mailbox" in page


def test_health_page_and_decisions_are_admin_only(client):
    event_pk = _parked()
    db.session.commit()
    log_in(client, make_user().email)
    assert client.get("/admin/health").status_code == 404
    token = csrf_token(client, "/")
    for decision in ("retry", "dismiss"):
        response = client.post(f"/admin/webhooks/{event_pk}/{decision}", data={"csrf_token": token})
        assert response.status_code == 404
    assert db.session.get(WebhookEvent, event_pk).attempts == MAX_ATTEMPTS


def test_retry_puts_a_parked_event_back_in_line_audited_and_drained(app, client, admin):
    buyer = make_chain(2)[1]
    body = stripe_event("checkout.session.completed", stripe_checkout(buyer.id, 5000, "pi_1"))
    event_pk = _parked(body)
    db.session.commit()
    assert claim_events(10) == []
    db.session.rollback()

    response = _decide(client, event_pk, "retry", HX)
    assert response.status_code == 200
    row = response.get_data(as_text=True)
    assert row.startswith(f'<tr id="parked-{event_pk}">')
    assert "Retried: back in the queue." in row and "<form" not in row
    assert db.session.get(WebhookEvent, event_pk).attempts == 0
    [entry] = _audited("webhook.retried")
    assert (entry.actor_id, entry.subject_id) == (admin.id, str(event_pk))
    assert entry.details["last_error"] == ERROR
    assert get_redis().exists(DRAIN_FLAG) and get_queue().count == 1

    run_jobs(app)
    db.session.expire_all()
    assert db.session.get(WebhookEvent, event_pk).processed_at is not None
    assert db.session.scalar(select(func.count()).select_from(Sale)) == 1


def test_dismiss_without_javascript_and_the_event_is_never_claimed_again(client, admin):
    event_pk = _parked()
    db.session.commit()
    response = _decide(client, event_pk, "dismiss")
    assert (response.status_code, response.headers["Location"]) == (302, "/admin/health")
    page = client.get("/admin/health").get_data(as_text=True)
    assert f"Event {event_pk}: Dismissed: it will not be processed." in page
    assert f'id="parked-{event_pk}"' not in page
    event = db.session.get(WebhookEvent, event_pk)
    assert (event.dismissed_by, event.processed_at) == (admin.id, None)
    assert event.dismissed_at is not None
    assert len(_audited("webhook.dismissed")) == 1
    # Even with its attempts reset by hand, a dismissed event is not taken or swept.
    db.session.execute(text("UPDATE webhook_events SET attempts = 0"))
    assert claim_events(10) == []
    assert not has_stale_events(timedelta(seconds=1))
    assert client.get("/monitor/webhooks").status_code == 200


def test_a_second_decision_changes_nothing(client, admin):
    event_pk = _parked()
    db.session.commit()
    _decide(client, event_pk, "dismiss", HX)
    for decision in ("retry", "dismiss"):
        response = _decide(client, event_pk, decision, HX)
        assert response.status_code == 200
        assert "No longer parked: someone decided already." in response.get_data(as_text=True)
    assert len(_audited("webhook.dismissed")) == 1
    assert _audited("webhook.retried") == []
    assert get_queue().count == 0


def test_unknown_events_are_404_and_decisions_need_csrf(client, admin):
    event_pk = _parked()
    db.session.commit()
    token = csrf_token(client, "/admin/health")
    assert (
        client.post("/admin/webhooks/999999/retry", data={"csrf_token": token}).status_code == 404
    )
    assert (
        client.post(f"/admin/webhooks/{event_pk}/forget", data={"csrf_token": token}).status_code
        == 404
    )
    assert client.post(f"/admin/webhooks/{event_pk}/retry").status_code == 400
    assert db.session.get(WebhookEvent, event_pk).attempts == MAX_ATTEMPTS
    assert _audited("webhook.retried") == []


def test_parked_events_do_not_make_the_sweeper_request_drains(client):
    _parked()
    db.session.commit()
    assert not has_stale_events(timedelta(seconds=60))


def test_admin_post_routes_answer_404_to_affiliates_whatever_the_method(client):
    make_user(email="affiliate@example.com")
    assert client.get("/admin/webhooks/1/retry").status_code == 302  # anonymous: log in
    log_in(client, "affiliate@example.com")
    for path in ("/admin/nonexistent", "/admin/webhooks/1/retry", "/admin/webhooks/1/dismiss"):
        assert client.get(path).status_code == 404
        assert client.get(path, headers={"HX-Request": "true"}).status_code == 404


def test_an_event_dismissed_during_a_batch_retry_is_not_applied(client):
    """A batch that failed retries its events one by one; one dismissed meanwhile stays out."""
    _, buyer = make_chain(2)
    checkout = stripe_event("checkout.session.completed", stripe_checkout(buyer.id, 1000, "pi_d"))
    event_pk = _parked(checkout)
    admin = make_user(is_admin=True)
    assert dismiss_parked_event(event_pk, admin) is not None
    db.session.commit()
    assert process_events([event_pk]) == 0
    db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(Sale)) == 0


def test_an_admin_still_gets_405_for_a_wrong_method(client):
    make_user(email="boss@example.com", is_admin=True)
    log_in(client, "boss@example.com")
    assert client.get("/admin/webhooks/1/retry").status_code == 405


def test_the_health_page_shows_the_last_backup_and_its_verification(client, admin):
    page = client.get("/admin/health").get_data(as_text=True)
    assert "No backup recorded yet" in page and "No verification recorded yet" in page
    audit.record("backup.created", subject_type="backup", subject_id="refmlm-20261127T031500Z.dump")
    audit.record(
        "backup.verified",
        subject_type="backup",
        subject_id="refmlm-20261127T031500Z.dump",
        result="failed",
    )
    db.session.commit()
    page = client.get("/admin/health").get_data(as_text=True)
    assert "Last backup: <code>refmlm-20261127T031500Z.dump</code>" in page
    assert 'class="form-error">Last verification' in page and " failed, " in page
