"""Stripe payout accounts (Connect Express): opening one, onboarding links, and readiness.

The account is opened through the official SDK (``stripe_client()``), its readiness stored
from what Stripe states (a retrieve, or a Connect event), never from what the user's browser
says; an older statement never overwrites a newer one (``stripe_updated_at``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

import stripe
from flask import current_app, url_for
from sqlalchemy import or_, select, update
from sqlalchemy.dialects.postgresql import insert

from app.extensions import db
from app.models import PayoutAccount, User
from app.providers import AccountReport
from app.providers.stripe_api import StripeNotConfigured, stripe_client
from app.providers.stripe_connect import DEAUTHORIZED, account_report
from app.services.ops import audit

STRIPE = "stripe"
log = logging.getLogger(__name__)

# Where a Stripe Connect Express account can be opened (Stripe's list of supported countries).
EXPRESS_COUNTRIES: dict[str, str] = {
    "AU": "Australia", "AT": "Austria", "BE": "Belgium", "BR": "Brazil", "BG": "Bulgaria",
    "CA": "Canada", "HR": "Croatia", "CY": "Cyprus", "CZ": "Czech Republic", "DK": "Denmark",
    "EE": "Estonia", "FI": "Finland", "FR": "France", "DE": "Germany", "GI": "Gibraltar",
    "GR": "Greece", "HK": "Hong Kong", "HU": "Hungary", "IE": "Ireland", "IT": "Italy",
    "JP": "Japan", "LV": "Latvia", "LI": "Liechtenstein", "LT": "Lithuania",
    "LU": "Luxembourg", "MT": "Malta", "MX": "Mexico", "NL": "Netherlands",
    "NZ": "New Zealand", "NO": "Norway", "PL": "Poland", "PT": "Portugal", "RO": "Romania",
    "SG": "Singapore", "SK": "Slovakia", "SI": "Slovenia", "ES": "Spain", "SE": "Sweden",
    "CH": "Switzerland", "TH": "Thailand", "AE": "United Arab Emirates",
    "GB": "United Kingdom", "US": "United States",
}  # fmt: skip
COUNTRY_REJECTED = "Choose the country of your bank account from the list."
STRIPE_DOWN = "Stripe did not answer just now, so nothing changed. Please try again in a minute."
STRIPE_OFF = "Payouts through Stripe are not available on this site yet."

# Stripe's requirements.disabled_reason, in words. The first ones are fixed by finishing the
# onboarding ("Continue setup"); the others are decided by Stripe or by the account's owner.
_SETUP_REASONS = {
    "requirements.past_due": "Stripe needs more information from you.",
    "requirements.pending_verification": "Stripe is verifying your information.",
    "action_required.requested_capabilities": "Stripe needs you to accept transfers.",
}
_RESTRICTIONS = {
    DEAUTHORIZED: "The Stripe account was disconnected from this program.",
    "under_review": "Stripe is reviewing the account.",
    "listed": "Stripe is reviewing the account.",
    "platform_paused": "Payouts to the account are paused by the program.",
    "rejected.fraud": "Stripe rejected the account.",
    "rejected.incomplete_verification": "Stripe rejected the account (verification).",
    "rejected.listed": "Stripe rejected the account.",
    "rejected.terms_of_service": "Stripe rejected the account (terms of service).",
    "rejected.other": "Stripe rejected the account.",
}


class StripeUnavailable(Exception):
    """Stripe refused or did not answer; nothing was stored. The message is for the user.
    ``key_spent``: Stripe answered, and keeps that answer for the idempotency key used, so a
    retry must use the next attempt's key (a timeout leaves the key usable: a retry with it
    gets the account Stripe may have opened)."""

    def __init__(self, message: str, *, key_spent: bool = False) -> None:
        super().__init__(message)
        self.key_spent = key_spent


@dataclass(frozen=True)
class StripeStatus:
    """What the payouts page says about the user's Stripe account. ``state``: ``none``,
    ``ready``, ``setup`` (onboarding to finish: "Continue setup") or ``restricted``."""

    state: str
    country: str | None = None
    message: str | None = None

    @property
    def country_name(self) -> str | None:
        return EXPRESS_COUNTRIES.get(self.country or "", self.country)


def stripe_account(user_id: str) -> PayoutAccount | None:
    """The user's Stripe payout account, if they opened one."""
    return db.session.execute(
        select(PayoutAccount).where(
            PayoutAccount.user_id == user_id, PayoutAccount.provider == STRIPE
        )
    ).scalar_one_or_none()


def stripe_status(user_id: str) -> StripeStatus:
    """The user's Stripe account as the payouts page shows it."""
    account = stripe_account(user_id)
    if account is None:
        return StripeStatus("none")
    if account.is_ready:
        return StripeStatus("ready", account.country)
    reason = account.restriction
    if reason is None or reason in _SETUP_REASONS:
        message = _SETUP_REASONS.get(reason or "", "Stripe needs more information from you.")
        return StripeStatus("setup", account.country, message)
    message = _RESTRICTIONS.get(reason, f"Stripe has restricted the account ({reason}).")
    return StripeStatus("restricted", account.country, message)


def _unavailable(error: Exception, doing: str) -> StripeUnavailable:
    """The user's message for a failed Stripe call (logged with Stripe's own message)."""
    if isinstance(error, StripeNotConfigured):
        log.error("Stripe %s: %s", doing, error)
        return StripeUnavailable(STRIPE_OFF)
    status = getattr(error, "http_status", None)
    log.warning("Stripe %s failed: %s %s: %s", doing, type(error).__name__, status, error)
    # A 429 is never kept for the key, nor is a request that got no answer.
    return StripeUnavailable(STRIPE_DOWN, key_spent=status is not None and status != 429)


def open_stripe_account(
    user: User, country: str, *, attempt: int = 0, ip_hash: str | None = None
) -> PayoutAccount:
    """The user's Stripe account: the existing one, or a new Express account opened at Stripe
    (transfers requested, ``metadata.user_id``) and stored with its readiness.

    Idempotent: the Stripe call's idempotency key is the user's id and ``attempt``, so a double
    submit opens one account at Stripe; the row is unique per user and provider, so two
    requests racing store one (the later one gets the stored row). Audited as
    ``payout_account.stripe_opened``. Raises ``ValueError`` for a country outside
    ``EXPRESS_COUNTRIES`` and ``StripeUnavailable`` (nothing stored) when Stripe fails.
    Flushes; the caller commits (before sending the user to Stripe: the account exists)."""
    existing = stripe_account(user.id)
    if existing is not None:
        return existing
    if country not in EXPRESS_COUNTRIES:
        raise ValueError(COUNTRY_REJECTED)
    asked_at = datetime.now(UTC)
    try:
        opened = stripe_client().v1.accounts.create(
            params={
                "type": "express",
                "country": country,
                "email": user.email,
                "capabilities": {"transfers": {"requested": True}},
                "metadata": {"user_id": user.id},
            },
            options={"idempotency_key": f"payout-account-{user.id}-{attempt}"},
        )
    except (stripe.StripeError, StripeNotConfigured) as error:
        raise _unavailable(error, "account creation") from error
    report = account_report(opened.to_dict(), asked_at)
    account_id = db.session.execute(
        insert(PayoutAccount)
        .values(
            user_id=user.id,
            provider=STRIPE,
            stripe_account_id=report.account_id,
            country=country,
            payouts_enabled=report.payouts_enabled,
            transfers_active=report.transfers_active,
            restriction=report.restriction,
            stripe_updated_at=asked_at,
        )
        .on_conflict_do_nothing()
        .returning(PayoutAccount.id)
    ).scalar_one_or_none()
    stored = stripe_account(user.id)
    if account_id is None:
        if stored.stripe_account_id != report.account_id:  # opened with another attempt's key
            log.warning(
                "Stripe account %s of user %s is not used: %s was stored first",
                report.account_id,
                user.id,
                stored.stripe_account_id,
            )
        return stored
    audit.record(
        "payout_account.stripe_opened",
        actor_id=user.id,
        subject_type="payout_account",
        subject_id=account_id,
        ip_hash=ip_hash,
        stripe_account_id=report.account_id,
        country=country,
    )
    return stored


def onboarding_origin() -> str:
    """Where Stripe's onboarding pages are: Stripe's Connect site, or the fake Stripe's own
    address when ``STRIPE_API_BASE`` points at it."""
    base = urlsplit(current_app.config["STRIPE_API_BASE"])
    if base.hostname == "api.stripe.com":
        return "https://connect.stripe.com"
    return f"{base.scheme}://{base.netloc}"


def onboarding_link(account: PayoutAccount) -> str:
    """A new single-use Stripe onboarding link for the account, coming back to our return
    route (or refresh route, when it expired) at ``PUBLIC_BASE_URL``. Changes nothing here;
    raises ``StripeUnavailable``."""
    base = current_app.config["PUBLIC_BASE_URL"]
    try:
        link = stripe_client().v1.account_links.create(
            params={
                "account": account.stripe_account_id,
                "type": "account_onboarding",
                "refresh_url": base + url_for("payouts.stripe_refresh"),
                "return_url": base + url_for("payouts.stripe_return"),
            }
        )
    except (stripe.StripeError, StripeNotConfigured) as error:
        raise _unavailable(error, "account link") from error
    return link.url


def _store_readiness(report: AccountReport) -> bool:
    """Store what Stripe stated about the account unless something stated later is stored
    already (one conditional UPDATE: concurrent writers never make an older state win).
    Returns whether it was stored."""
    stored = db.session.execute(
        update(PayoutAccount)
        .where(
            PayoutAccount.stripe_account_id == report.account_id,
            or_(
                PayoutAccount.stripe_updated_at.is_(None),
                PayoutAccount.stripe_updated_at <= report.stated_at,
            ),
        )
        .values(
            payouts_enabled=report.payouts_enabled,
            transfers_active=report.transfers_active,
            restriction=report.restriction,
            stripe_updated_at=report.stated_at,
        )
        .returning(PayoutAccount.id)
        .execution_options(synchronize_session="fetch")
    ).scalar_one_or_none()
    return stored is not None


def apply_account_report(report: AccountReport) -> bool:
    """Apply a Connect event's statement about an account. Idempotent; a statement older than
    the stored one is ignored, and so (logged, not an error) is one about an account we do not
    know. Returns whether anything was stored. Flushes; the caller commits."""
    if _store_readiness(report):
        return True
    known = db.session.scalar(
        select(PayoutAccount.id).where(PayoutAccount.stripe_account_id == report.account_id)
    )
    if known is None:
        log.warning("Stripe Connect event about unknown account %s ignored", report.account_id)
    else:
        log.info(
            "Stripe Connect statement of %s about %s ignored: a later one is stored",
            report.stated_at.isoformat(),
            report.account_id,
        )
    return False


def refresh_stripe_account(account: PayoutAccount) -> bool:
    """Ask Stripe for the account now, store its readiness, and say whether it can be paid
    (``is_ready``; call it before every transfer). An account Stripe no longer lets us reach
    (403 ``account_invalid``: deauthorized or unknown) is stored as restricted
    (``deauthorized``). Raises ``StripeUnavailable`` for anything else (nothing stored: the
    caller retries). Flushes; the caller commits."""
    asked_at = datetime.now(UTC)
    try:
        retrieved = stripe_client().v1.accounts.retrieve(account.stripe_account_id)
    except stripe.PermissionError as error:
        if error.error is None or error.error.code != "account_invalid":
            raise _unavailable(error, "account retrieve") from error
        log.warning(
            "Stripe account %s is no longer reachable: %s", account.stripe_account_id, error
        )
        report = AccountReport(account.stripe_account_id, asked_at, False, False, DEAUTHORIZED)
    except (stripe.StripeError, StripeNotConfigured) as error:
        raise _unavailable(error, "account retrieve") from error
    else:
        report = account_report(retrieved.to_dict(), asked_at)
    _store_readiness(report)
    db.session.refresh(account)
    return account.is_ready
