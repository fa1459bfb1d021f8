"""Request bodies are bounded: over the limit is a clean 413, never read whole, never a 500."""

from __future__ import annotations

import io
import json

import pytest
from sqlalchemy import func, select

from app.config import Config
from app.extensions import db
from app.models import WebhookEvent
from tests.signing import lemon_headers, stripe_checkout, stripe_event, stripe_headers

HX = {"HX-Request": "true"}


class RecordingStream(io.BytesIO):
    """A request body that remembers how much of it the app read."""

    def __init__(self, size: int) -> None:
        super().__init__(b"x" * size)
        self.bytes_read = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.bytes_read += len(data)
        return data

    def readinto(self, buffer) -> int:
        count = super().readinto(buffer)
        self.bytes_read += count
        return count

    def readline(self, size: int | None = -1) -> bytes:
        data = super().readline(size)
        self.bytes_read += len(data)
        return data


def _stored() -> int:
    return db.session.scalar(select(func.count()).select_from(WebhookEvent))


def _chunked(stream: io.BytesIO) -> dict:
    """A body without Content-Length, as a server that decodes chunked requests passes it."""
    environ = {"wsgi.input": stream, "wsgi.input_terminated": True}
    return {"environ_overrides": {**environ, "HTTP_TRANSFER_ENCODING": "chunked"}}


@pytest.mark.parametrize("provider", ["stripe", "lemonsqueezy"])
def test_a_webhook_over_the_limit_is_a_json_413_without_reading_it(app, client, provider):
    body = b"x" * (app.config["WEBHOOK_MAX_CONTENT_LENGTH"] + 1)
    headers = stripe_headers(body) if provider == "stripe" else lemon_headers(body)
    stream = RecordingStream(len(body))
    response = client.post(
        f"/webhooks/{provider}", input_stream=stream, content_length=len(body), headers=headers
    )
    assert response.status_code == 413
    assert "larger than" in response.get_json()["error"]
    assert stream.bytes_read == 0 and _stored() == 0


def test_a_chunked_webhook_is_cut_at_the_limit(app, client):
    limit = app.config["WEBHOOK_MAX_CONTENT_LENGTH"]
    stream = RecordingStream(limit * 4)
    headers = stripe_headers(b"{}")
    response = client.post("/webhooks/stripe", headers=headers, **_chunked(stream))
    assert response.status_code == 413 and response.is_json
    assert stream.bytes_read <= limit + 64 * 1024  # a read past the limit is refused
    assert _stored() == 0


def test_a_form_encoded_webhook_is_cut_at_the_webhook_limit(app, client):
    # Form bodies are parsed before any view runs: the webhook limit must already apply.
    limit = app.config["WEBHOOK_MAX_CONTENT_LENGTH"]
    assert app.config["MAX_CONTENT_LENGTH"] > limit * 1.5
    stream = RecordingStream(int(limit * 1.5))
    headers = {**stripe_headers(b"{}"), "Content-Type": "application/x-www-form-urlencoded"}
    response = client.post("/webhooks/stripe", headers=headers, **_chunked(stream))
    assert response.status_code == 413 and response.is_json
    assert stream.bytes_read <= limit + 64 * 1024


@pytest.mark.parametrize(
    "header",
    [
        "t=1,v1=deadbeef",
        "v1=" + "a" * 64,
        "t=12,v1=" + "A" * 64,
        "t=12,v1=" + "a" * 63,
        "t=x,v1=" + "a" * 64,
        "t=1, v1=" + "a" * 64,
    ],
    ids=["short-hex", "no-time", "upper-case", "63-hex", "time-not-digits", "space"],
)
def test_a_malformed_stripe_signature_header_is_400_before_the_body_is_read(client, header):
    stream = RecordingStream(1000)
    response = client.post(
        "/webhooks/stripe",
        input_stream=stream,
        content_length=1000,
        headers={"Stripe-Signature": header},
    )
    assert response.status_code == 400
    assert "malformed Stripe-Signature" in response.get_json()["error"]
    assert stream.bytes_read == 0 and _stored() == 0


@pytest.mark.parametrize(
    "header",
    ["", "a" * 63, "a" * 65, "g" * 64, "sha256=" + "a" * 64],
    ids=["empty", "63-hex", "65-hex", "not-hex", "prefixed"],
)
def test_a_malformed_lemon_signature_header_is_400_before_the_body_is_read(client, header):
    stream = RecordingStream(1000)
    response = client.post(
        "/webhooks/lemonsqueezy",
        input_stream=stream,
        content_length=1000,
        headers={"X-Signature": header},
    )
    assert response.status_code == 400
    assert stream.bytes_read == 0 and _stored() == 0


def test_stripe_signature_headers_with_several_schemes_are_accepted(client):
    body = stripe_event("checkout.session.completed", stripe_checkout(None, 1000, "pi_v0"))
    headers = stripe_headers(body)
    headers["Stripe-Signature"] += ",v0=" + "0" * 64
    response = client.post("/webhooks/stripe", data=body, headers=headers)
    assert response.status_code == 200 and _stored() == 1


def test_a_webhook_at_the_limit_is_accepted(app, client):
    limit = app.config["WEBHOOK_MAX_CONTENT_LENGTH"]
    checkout = stripe_checkout(None, 1000, "pi_big", metadata={"pad": ""})
    body = stripe_event("checkout.session.completed", checkout, event_id="evt_big")
    event = json.loads(body)
    event["data"]["object"]["metadata"]["pad"] = "x" * (limit - len(body))
    body = json.dumps(event).encode()
    assert len(body) == limit
    response = client.post("/webhooks/stripe", data=body, headers=stripe_headers(body))
    assert response.status_code == 200 and _stored() == 1


@pytest.mark.parametrize("hx", [False, True], ids=["page", "fragment"])
def test_a_form_over_the_app_limit_is_the_413_page(app, client, hx):
    size = app.config["MAX_CONTENT_LENGTH"] + 1
    stream = RecordingStream(size)
    headers = {"Content-Type": "application/x-www-form-urlencoded", **(HX if hx else {})}
    response = client.post("/login", input_stream=stream, content_length=size, headers=headers)
    assert response.status_code == 413
    html = response.get_data(as_text=True)
    assert "too large" in html and 'data-status="413"' in html
    assert ("<html" in html) is not hx
    assert stream.bytes_read == 0


def test_a_chunked_form_is_cut_at_the_app_limit(app, client):
    limit = app.config["MAX_CONTENT_LENGTH"]
    stream = RecordingStream(limit * 3)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    response = client.post("/login", headers=headers, **_chunked(stream))
    # werkzeug hands the form parser the body cut at the limit, which then fails as a form
    # (a 400); nothing past the limit is read.
    assert response.status_code in (400, 413)
    assert stream.bytes_read <= limit + 64 * 1024


def test_the_limits_come_from_the_environment(monkeypatch):
    assert (Config().MAX_CONTENT_LENGTH, Config().WEBHOOK_MAX_CONTENT_LENGTH) == (2 << 20, 1 << 20)
    monkeypatch.setenv("MAX_CONTENT_LENGTH", "5000")
    monkeypatch.setenv("WEBHOOK_MAX_CONTENT_LENGTH", "4000")
    assert (Config().MAX_CONTENT_LENGTH, Config().WEBHOOK_MAX_CONTENT_LENGTH) == (5000, 4000)
