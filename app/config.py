"""Settings, all read from the environment (see the README's configuration table)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def sqlalchemy_url(url: str) -> str:
    """Point a plain ``postgres://`` / ``postgresql://`` URL at the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def direct_database_url(config: Mapping[str, Any]) -> str:
    """The URL for work that needs a database session of its own (migrations, ``pg_dump`` and
    ``pg_restore``): ``DIRECT_DATABASE_URL`` when set, else the app's."""
    return config["DIRECT_DATABASE_URL"] or config["SQLALCHEMY_DATABASE_URI"]


def engine_options(config: Mapping[str, Any]) -> dict[str, Any]:
    """The app's engine options; without ``DATABASE_PREPARED_STATEMENTS`` psycopg never
    prepares a statement on the server (it does after five runs of one by default), which a
    PgBouncer before 1.21 in transaction mode cannot follow from one server connection to the
    next."""
    options = dict(config["SQLALCHEMY_ENGINE_OPTIONS"])
    # DB_PING_IDLE_SECONDS > 0: only connections idle that long are pinged (app/pool_ping.py).
    options["pool_pre_ping"] = config["DB_PING_IDLE_SECONDS"] <= 0
    if not config["DATABASE_PREPARED_STATEMENTS"]:
        options["connect_args"] = {**options.get("connect_args", {}), "prepare_threshold": None}
    return options


def limiter_storage_url(redis_url: str) -> str:
    """Flask-Limiter (via `limits`) spells a Redis unix socket ``redis+unix://``."""
    if redis_url.startswith("unix://"):
        return "redis+unix://" + redis_url[len("unix://") :]
    return redis_url


# Flask-SQLAlchemy's bind key for the reports' reads (REPORTS_DATABASE_URL).
REPORTS_BIND = "reports"


def database_binds(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Flask-SQLAlchemy's extra engines: the reports' database (a read replica) when
    ``REPORTS_DATABASE_URL`` is set, with the primary's pool options."""
    url = config["REPORTS_DATABASE_URL"]
    if not url:
        return {}
    return {REPORTS_BIND: {**config["SQLALCHEMY_ENGINE_OPTIONS"], "url": sqlalchemy_url(url)}}


# Known to everyone, so production refuses it (check_config).
DEV_SECRET_KEY = "dev-only-secret-change-me"  # noqa: S105
APP_ENVIRONMENTS = ("development", "production")


class ConfigurationError(RuntimeError):
    """A setting the app must not start with; the message says which and what to do."""


def check_config(config: Mapping[str, Any]) -> None:
    """Refuse to start with settings that would be unsafe: an unknown ``APP_ENV`` (a typo must
    not silently mean development), malformed ``FERNET_KEYS`` or ``MAIL_URL``, and in
    production the default ``SECRET_KEY``, no Fernet key or no ``MAIL_URL``. Raises
    ``ConfigurationError``."""
    from app.crypto import parse_keys
    from app.services.mail.smtp import parse_mail_url

    if config["APP_ENV"] not in APP_ENVIRONMENTS:
        raise ConfigurationError(
            f"APP_ENV must be one of {', '.join(APP_ENVIRONMENTS)}, not {config['APP_ENV']!r}."
        )
    try:
        keys = parse_keys(config["FERNET_KEYS"])
        if config["MAIL_URL"]:
            parse_mail_url(config["MAIL_URL"])
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None
    if config["APP_ENV"] != "production":
        return
    if not config["SECRET_KEY"] or config["SECRET_KEY"] == DEV_SECRET_KEY:
        raise ConfigurationError(
            "APP_ENV=production needs its own SECRET_KEY (a long random value), "
            "not the development default."
        )
    if not keys:
        raise ConfigurationError(
            "APP_ENV=production needs FERNET_KEYS (payee details are encrypted at rest)."
        )
    if not config["MAIL_URL"]:
        raise ConfigurationError(
            "APP_ENV=production needs MAIL_URL: without it no mail leaves (password resets "
            "never arrive) and admins read every mail, reset links included, at /dev/mail."
        )


class Config:
    """One class; every value comes from the environment with a safe development default."""

    def __init__(self) -> None:
        env = os.environ
        # "production" turns on the start-up refusals of check_config.
        self.APP_ENV = env.get("APP_ENV", "development").strip().lower()
        self.SECRET_KEY = env.get("SECRET_KEY") or DEV_SECRET_KEY
        self.SQLALCHEMY_DATABASE_URI = sqlalchemy_url(
            env.get("DATABASE_URL", "postgresql://root@127.0.0.1:5432/test")
        )
        # Behind PgBouncer in transaction mode: a direct URL for migrations and backups, and
        # no server-side prepared statements before PgBouncer 1.21 (docs/operations.md).
        self.DIRECT_DATABASE_URL = sqlalchemy_url(env.get("DIRECT_DATABASE_URL", ""))
        self.DATABASE_PREPARED_STATEMENTS = _bool("DATABASE_PREPARED_STATEMENTS", True)
        # A pooled connection idle longer than this is pinged before use (0: every checkout).
        self.DB_PING_IDLE_SECONDS = float(env.get("DB_PING_IDLE_SECONDS", "1"))
        self.SQLALCHEMY_ENGINE_OPTIONS = {
            "pool_size": int(env.get("DB_POOL_SIZE", "5")),
            "max_overflow": int(env.get("DB_MAX_OVERFLOW", "10")),
        }
        # Where /admin/reports reads its views (a streaming replica); empty: the primary.
        self.REPORTS_DATABASE_URL = env.get("REPORTS_DATABASE_URL", "")
        self.REDIS_URL = env.get("REDIS_URL", "redis://127.0.0.1:6379/0")
        self.RQ_QUEUES = [q.strip() for q in env.get("RQ_QUEUES", "default").split(",") if q]
        self.RQ_WORKER_CLASS = env.get("RQ_WORKER_CLASS", "fork")
        self.RATELIMIT_ENABLED = _bool("RATELIMIT_ENABLED", True)
        self.RATELIMIT_HEADERS_ENABLED = True
        # A Redis that stalls must not hold a request past a couple of seconds (then: 503).
        self.RATELIMIT_STORAGE_OPTIONS = {"socket_connect_timeout": 2, "socket_timeout": 2}
        self.PUBLIC_BASE_URL = env.get("PUBLIC_BASE_URL", "http://127.0.0.1:5000").rstrip("/")
        # How many proxies in front set X-Forwarded-For (0: use the socket's address).
        self.PROXY_FIX_X_FOR = int(env.get("PROXY_FIX_X_FOR", "0"))
        self.FERNET_KEYS = env.get("FERNET_KEYS", "")
        # Where `flask backup` writes dumps and `flask backup verify` finds the newest.
        self.BACKUP_DIR = env.get("BACKUP_DIR", "")
        self.STRIPE_WEBHOOK_SECRET = env.get("STRIPE_WEBHOOK_SECRET", "")
        self.STRIPE_CONNECT_WEBHOOK_SECRET = env.get("STRIPE_CONNECT_WEBHOOK_SECRET", "")
        # The Stripe API (app/providers/stripe_api.py): tests and the demo point the base at
        # the fake Stripe server on loopback.
        self.STRIPE_SECRET_KEY = env.get("STRIPE_SECRET_KEY", "")
        self.STRIPE_API_BASE = env.get("STRIPE_API_BASE", "https://api.stripe.com").rstrip("/")
        self.STRIPE_TIMEOUT = float(env.get("STRIPE_TIMEOUT", "20"))
        # Where mails go (app/services/mail/smtp.py); empty: kept for /dev/mail, never sent.
        self.MAIL_URL = env.get("MAIL_URL", "")
        self.MAIL_FROM = env.get(
            "MAIL_FROM", f"no-reply@{urlsplit(self.PUBLIC_BASE_URL).hostname or 'localhost'}"
        )
        self.LEMONSQUEEZY_WEBHOOK_SECRET = env.get("LEMONSQUEEZY_WEBHOOK_SECRET", "")
        # Request bodies in bytes: larger ones answer 413 and are never read whole.
        self.MAX_CONTENT_LENGTH = int(env.get("MAX_CONTENT_LENGTH", str(2 * 1024 * 1024)))
        self.WEBHOOK_MAX_CONTENT_LENGTH = int(
            env.get("WEBHOOK_MAX_CONTENT_LENGTH", str(1024 * 1024))
        )
        self.SESSION_COOKIE_SECURE = _bool(
            "SESSION_COOKIE_SECURE", urlsplit(self.PUBLIC_BASE_URL).scheme == "https"
        )
        self.SESSION_COOKIE_HTTPONLY = True
        self.SESSION_COOKIE_SAMESITE = "Lax"
        self.REMEMBER_COOKIE_SECURE = self.SESSION_COOKIE_SECURE
        self.REMEMBER_COOKIE_HTTPONLY = True
        # Also enforced by the server (app/services/accounts/sessions.py), for sessions too.
        self.REMEMBER_COOKIE_DURATION = timedelta(days=int(env.get("REMEMBER_DAYS", "30")))
        self.REMEMBER_COOKIE_SAMESITE = "Lax"
        self.WTF_CSRF_ENABLED = _bool("WTF_CSRF_ENABLED", True)
        self.WTF_CSRF_TIME_LIMIT = None  # the token lives as long as the session
