"""Lemon Squeezy payout accounts: the payee details, encrypted at rest, and their key rotation.

The details are stored only as a Fernet token (``app/crypto.py``); they are decrypted for the
masked view and for settlement, and never written to a log or an audit entry. The Stripe
accounts are in ``stripe_accounts.py``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert

from app import crypto
from app.extensions import db
from app.models import PayoutAccount
from app.services.ops import audit
from app.services.payouts.payee_details import (
    MaskedPayee,
    PayeeDetails,
    normalize_iban,
    normalize_name,
    normalize_payee_email,
)

LEMON_SQUEEZY = "lemon_squeezy"
# The key of an error about the whole form rather than one field.
FORM = "form"
BOTH_DESTINATIONS = "Enter an IBAN or a PayPal address, not both."
NO_DESTINATION = "Enter an IBAN or a PayPal address: where should we send your money?"

log = logging.getLogger(__name__)


@dataclass
class PayeeDetailsRejected(Exception):
    """What is wrong with the submitted details, by form field; nothing was written."""

    errors: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PayeeStatus:
    """What the payouts page shows: the masked details (``None`` when none are saved), or that
    saved details cannot be read (a key missing from ``FERNET_KEYS``)."""

    masked: MaskedPayee | None = None
    updated_at: datetime | None = None
    unreadable: bool = False


def _account(user_id: str, *, lock: bool = False) -> PayoutAccount | None:
    query = select(PayoutAccount).where(
        PayoutAccount.user_id == user_id, PayoutAccount.provider == LEMON_SQUEEZY
    )
    if lock:
        query = query.with_for_update()
    return db.session.execute(query).scalar_one_or_none()


def _read(account: PayoutAccount | None) -> PayeeDetails | None:
    """The account's details, or ``None`` when there are none or no configured key reads
    them (logged with the account id only)."""
    if account is None or account.payee_details is None:
        return None
    try:
        return PayeeDetails.from_json(crypto.decrypt(account.payee_details))
    except (crypto.InvalidToken, crypto.KeysMissing):
        log.warning("payee details of payout account %s cannot be decrypted", account.id)
        return None


def payee_details(user_id: str) -> PayeeDetails | None:
    """The user's payee details in clear, for settling a payout; never log or render them."""
    return _read(_account(user_id))


def payee_status(user_id: str) -> PayeeStatus:
    """The user's own details, masked, for their payouts page."""
    account = _account(user_id)
    if account is None or account.payee_details is None:
        return PayeeStatus()
    details = _read(account)
    if details is None:
        return PayeeStatus(updated_at=account.details_updated_at, unreadable=True)
    return PayeeStatus(masked=details.masked(), updated_at=account.details_updated_at)


def _merge(current: PayeeDetails | None, submitted: dict[str, str]) -> PayeeDetails:
    """The details after a submission in which a blank field keeps its saved value; a new IBAN
    replaces a saved PayPal address and the other way round. Raises ``PayeeDetailsRejected``."""
    rules = {
        "name": normalize_name,
        "email": normalize_payee_email,
        "iban": normalize_iban,
        "paypal_email": normalize_payee_email,
    }
    errors: dict[str, str] = {}
    given: dict[str, str] = {}
    for name, rule in rules.items():
        raw = (submitted.get(name) or "").strip()
        if raw:
            try:
                given[name] = rule(raw)
            except ValueError as problem:
                errors[name] = str(problem)
    if "iban" in given and "paypal_email" in given:
        errors[FORM] = BOTH_DESTINATIONS
    base = current or PayeeDetails(name="", email="")
    if "iban" in given or "paypal_email" in given:
        base = replace(base, iban=None, paypal_email=None)
    merged = replace(base, **given)
    if not merged.name and "name" not in errors:
        errors["name"] = "Enter the payee's name."
    if not merged.email and "email" not in errors:
        errors["email"] = "Enter the payee's email address."
    if not (merged.iban or merged.paypal_email) and not errors.keys() & {"iban", "paypal_email"}:
        errors[FORM] = NO_DESTINATION
    if errors:
        raise PayeeDetailsRejected(errors)
    return merged


def save_payee_details(
    user_id: str, submitted: dict[str, str], *, ip_hash: str | None = None
) -> bool:
    """Validate and store the user's payee details (fields ``name``, ``email``, ``iban``,
    ``paypal_email``; blank keeps the saved value), encrypted under the newest key.

    The account row is locked while the saved details are merged, so two saves (or a key
    rotation) never lose each other's change. Audited as ``payout_account.details_changed``
    with the names of the changed fields, never their values. Returns whether anything
    changed. Raises ``PayeeDetailsRejected`` (nothing written) or ``crypto.KeysMissing``.
    Flushes; the caller commits.
    """
    account = _account(user_id, lock=True)
    current = _read(account)
    details = _merge(current, submitted)
    if details == current:
        return False
    token = crypto.encrypt(details.to_json())
    now = datetime.now(UTC)
    if account is None:
        # A concurrent first save may have inserted the row since: the later one wins whole.
        account_id = db.session.execute(
            insert(PayoutAccount)
            .values(
                user_id=user_id,
                provider=LEMON_SQUEEZY,
                payee_details=token,
                details_updated_at=now,
            )
            .on_conflict_do_update(
                constraint="uq_payout_accounts_user_provider",
                set_={"payee_details": token, "details_updated_at": now, "updated_at": now},
            )
            .returning(PayoutAccount.id)
        ).scalar_one()
    else:
        account.payee_details, account.details_updated_at = token, now
        account_id = account.id
    before = current or PayeeDetails(name="", email="")
    changed = [
        name
        for name in ("name", "email", "iban", "paypal_email")
        if getattr(details, name) != getattr(before, name)
    ]
    audit.record(
        "payout_account.details_changed",
        actor_id=user_id,
        subject_type="payout_account",
        subject_id=account_id,
        ip_hash=ip_hash,
        fields=changed,
    )
    db.session.flush()
    return True


@dataclass(frozen=True)
class RotationBatch:
    """One batch of ``rotate_payee_details``: the last id seen (``None``: no rows left), how
    many tokens were re-encrypted, how many already used the newest key, and the ids of
    accounts whose details no configured key reads."""

    last_id: str | None
    rotated: int = 0
    current: int = 0
    unreadable: tuple[str, ...] = ()


_BATCH = text(
    """
    SELECT id, payee_details FROM payout_accounts
    WHERE payee_details IS NOT NULL AND id > :after
    ORDER BY id LIMIT :limit
    FOR UPDATE
    """
)
_REWRITE = text(
    """
    UPDATE payout_accounts AS a SET payee_details = v.token
    FROM unnest(CAST(:ids AS text[]), CAST(:tokens AS text[])) AS v(id, token)
    WHERE a.id = v.id
    """
)


def rotate_payee_details(after_id: str = "", limit: int = 500) -> RotationBatch:
    """Re-encrypt under the newest key the payee details of up to ``limit`` accounts with ids
    after ``after_id`` (in id order), in one UPDATE.

    The batch's rows are locked, so a save in between is not overwritten. Tokens already
    under the newest key are left as they are, so running it again changes nothing.
    ``details_updated_at`` is not touched (the payee changed nothing). The caller commits
    each batch.
    """
    rows = db.session.execute(_BATCH, {"after": after_id, "limit": limit}).all()
    if not rows:
        return RotationBatch(last_id=None)
    ids, tokens, unreadable, current = [], [], [], 0
    for account_id, token in rows:
        try:
            rotated = crypto.rotate(token)
        except crypto.InvalidToken:
            unreadable.append(account_id)
            continue
        if rotated is None:
            current += 1
        else:
            ids.append(account_id)
            tokens.append(rotated)
    if ids:
        db.session.execute(_REWRITE, {"ids": ids, "tokens": tokens})
    return RotationBatch(
        last_id=rows[-1][0], rotated=len(ids), current=current, unreadable=tuple(unreadable)
    )


# Stripe Connect -------------------------------------------------------------------------------
