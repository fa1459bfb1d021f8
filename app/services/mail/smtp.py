"""Sending over SMTP, as ``MAIL_URL`` says, and the message an outbox row becomes.

``MAIL_URL``: ``smtp://user:password@host:587`` (STARTTLS, required), ``smtps://...:465``
(TLS from the start), ``smtp://host:25?starttls=off`` (plain: a relay on the same machine or
network only). ``?cafile=/path/ca.pem`` trusts a private CA (and tests' self-signed
certificates). User and password are percent-decoded. Empty: nothing is sent (development,
mails are read at /dev/mail).
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, formatdate
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from app.models import OutboxMail

DEFAULT_PORTS = {"smtp": 587, "smtps": 465}
TIMEOUT = 20  # seconds for the connection and each SMTP command


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    security: str  # "starttls", "tls" or "none"
    username: str = ""
    password: str = ""
    cafile: str | None = None


class PermanentRefusal(Exception):
    """The server refused the mail for good (a 5xx answer): retrying cannot help."""


def parse_mail_url(url: str) -> SmtpSettings:
    """``MAIL_URL`` as settings; ``ValueError`` with a message an operator can act on."""
    parts = urlsplit(url)
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise ValueError("MAIL_URL must look like smtp://user:password@host:587 or smtps://...")
    query = parse_qs(parts.query)
    starttls = query.get("starttls", ["on"])[-1]
    if starttls not in {"on", "off"}:
        raise ValueError("MAIL_URL's starttls must be on or off")
    security = "tls" if parts.scheme == "smtps" else "starttls" if starttls == "on" else "none"
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError:
        raise ValueError("MAIL_URL's port must be a number") from None
    return SmtpSettings(
        host=parts.hostname,
        port=port,
        security=security,
        username=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        cafile=query.get("cafile", [None])[-1],
    )


def sender_domain(config: Mapping[str, Any]) -> str:
    """The domain of ``MAIL_FROM``: Message-IDs are made under it."""
    return config["MAIL_FROM"].rpartition("@")[2] or "localhost"


def build_message(mail: OutboxMail, sender: str, sender_name: str) -> EmailMessage:
    """The outbox row as a multipart/alternative message (text, then HTML), with its own
    Message-ID and, outside account mails, the unsubscribe headers (RFC 2369, RFC 8058)."""
    message = EmailMessage()
    message["From"] = formataddr((sender_name, sender))
    message["To"] = mail.recipient
    message["Subject"] = mail.subject
    message["Message-ID"] = mail.message_id
    message["Date"] = formatdate(localtime=False)
    if mail.unsubscribe_url:
        message["List-Unsubscribe"] = f"<{mail.unsubscribe_url}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(mail.body_text)
    message.add_alternative(mail.body_html, subtype="html")
    return message


def send_message(settings: SmtpSettings, message: EmailMessage) -> None:
    """Deliver ``message`` to the server. Raises ``PermanentRefusal`` when a 5xx answer
    refuses this mail (every recipient, or its content), ``smtplib.SMTPException`` or
    ``OSError`` for anything that may pass: 4xx, the network, and 5xx answers before the
    message (HELO, STARTTLS, login, MAIL FROM), which refuse every mail alike (a relay set
    up wrong) and are retried with the backoff until it is fixed."""
    context = ssl.create_default_context(cafile=settings.cafile)
    try:
        if settings.security == "tls":
            client = smtplib.SMTP_SSL(
                settings.host, settings.port, timeout=TIMEOUT, context=context
            )
        else:
            client = smtplib.SMTP(settings.host, settings.port, timeout=TIMEOUT)
        try:
            if settings.security == "starttls":
                client.starttls(context=context)
            if settings.username:
                client.login(settings.username, settings.password)
            client.send_message(message)
        finally:
            _quit(client)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        if all(code >= 500 for code in codes):
            raise PermanentRefusal(f"recipient refused: {exc.recipients}") from exc
        raise
    except smtplib.SMTPDataError as exc:
        if exc.smtp_code >= 500:
            raise PermanentRefusal(f"{exc.smtp_code} {exc.smtp_error!r}") from exc
        raise


def _quit(client: smtplib.SMTP) -> None:
    """End the session whatever the server answers to QUIT: once it took the message (or
    refused it), that answer changes nothing, and must not make a delivered mail look
    refused (sent again, or given up) nor hide the real refusal. (``with client:`` raises
    for any answer but 221.)"""
    try:
        client.quit()
    except (smtplib.SMTPException, OSError):
        client.close()
