"""The ``smtp_server`` fixture: a real SMTP server (aiosmtpd) on loopback for one test, with
``MAIL_URL`` pointed at it (and put back after); ``starttls_server`` is one that requires
STARTTLS (a self-signed certificate made with ``cryptography``) and a login."""

from __future__ import annotations

import datetime as dt
import email
import ipaddress
import socket
import ssl
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SMTP_USER, SMTP_PASSWORD = "mailer", "s3cret/pass"


class Inbox:
    """What arrived; ``refuse`` answers the next N messages with ``refusal`` instead;
    ``refuse_sender`` answers the next N MAIL FROM with ``sender_refusal`` (a relay set up
    wrong); ``quit_reply`` is the answer to QUIT (after the message was taken)."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.refuse = 0
        self.refusal = "451 4.3.0 Try again later"
        self.tls_used: list[bool] = []
        self.quit_reply = "221 Bye"
        self.refuse_sender = 0
        self.sender_refusal = "530 5.7.0 Must issue a STARTTLS command first"

    async def handle_MAIL(self, server, session, envelope, address, mail_options) -> str:
        if self.refuse_sender:
            self.refuse_sender -= 1
            return self.sender_refusal
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_QUIT(self, server, session, envelope) -> str:
        return self.quit_reply

    async def handle_DATA(self, server, session, envelope) -> str:
        if self.refuse:
            self.refuse -= 1
            return self.refusal
        self.tls_used.append(session.ssl is not None)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.messages.append(email.message_from_bytes(envelope.content, policy=default_policy))
        return "250 2.0.0 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _authenticate(server, session, envelope, mechanism, auth_data) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (
        auth_data.login.decode(),
        auth_data.password.decode(),
    ) == (SMTP_USER, SMTP_PASSWORD)
    return AuthResult(success=ok)


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as PEM files in ``directory``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _serve(app, mail_url: str, **controller_options):
    inbox = Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **controller_options)
    controller.start()
    saved = app.config["MAIL_URL"]
    app.config["MAIL_URL"] = mail_url.format(port=port)
    try:
        yield inbox
    finally:
        app.config["MAIL_URL"] = saved
        controller.stop()


@pytest.fixture
def smtp_server(app):
    """A plain SMTP server on loopback (``?starttls=off``); yields its ``Inbox``."""
    yield from _serve(app, "smtp://127.0.0.1:{port}?starttls=off")


@pytest.fixture
def starttls_server(app, tmp_path):
    """An SMTP server that requires STARTTLS and then a login; ``MAIL_URL`` trusts its
    self-signed certificate with ``?cafile=``."""
    cert_path, key_path = self_signed_certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    url = f"smtp://{SMTP_USER}:s3cret%2Fpass@127.0.0.1:{{port}}?cafile={cert_path}"
    yield from _serve(
        app,
        url,
        tls_context=context,
        require_starttls=True,
        authenticator=_authenticate,
        auth_required=True,
    )
