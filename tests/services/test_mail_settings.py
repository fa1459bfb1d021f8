"""MAIL_URL: what each form means, and a malformed one stops the app at start-up."""

from __future__ import annotations

import pytest

from app.config import Config, ConfigurationError, check_config
from app.services.mail.smtp import SmtpSettings, parse_mail_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "smtp://user%40example.com:p%2Fss@mail.example.com",
            SmtpSettings("mail.example.com", 587, "starttls", "user@example.com", "p/ss"),
        ),
        ("smtps://u:p@mail.example.com", SmtpSettings("mail.example.com", 465, "tls", "u", "p")),
        ("smtp://127.0.0.1:1025?starttls=off", SmtpSettings("127.0.0.1", 1025, "none")),
        (
            "smtp://relay:2525?cafile=/etc/ca.pem",
            SmtpSettings("relay", 2525, "starttls", cafile="/etc/ca.pem"),
        ),
    ],
)
def test_mail_url_forms(url, expected):
    assert parse_mail_url(url) == expected


@pytest.mark.parametrize(
    "url",
    ["http://mail.example.com", "smtp://", "smtp://host:port", "smtp://host?starttls=maybe"],
)
def test_a_malformed_mail_url_stops_the_app(url):
    with pytest.raises(ConfigurationError, match="MAIL_URL"):
        check_config({**Config().__dict__, "MAIL_URL": url})
