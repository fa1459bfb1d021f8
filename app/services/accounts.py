"""Creating users and the referral chain written with them."""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import Referral, User
from app.services.passwords import hash_password
from app.services.program import get_settings

# Crockford's base32 alphabet: no I, L, O or U, so a code reads aloud without ambiguity.
CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 8
_CODE_ATTEMPTS = 5


def generate_referral_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def create_user(
    *,
    username: str,
    email: str,
    password: str,
    referrer: User | None = None,
    is_admin: bool = False,
) -> User:
    """Create a user and, when referred, one Referral row per upline tier up to the max tier.

    The referral code is retried on collision; the unique index is what guarantees it.
    Flushes, never commits. Writes O(max tier) rows whatever the network's size.
    """
    for attempt in range(_CODE_ATTEMPTS):
        user = User(
            username=username.strip(),
            email=email.strip(),
            password_hash=hash_password(password),
            referral_code=generate_referral_code(),
            referred_by=referrer.id if referrer else None,
            is_admin=is_admin,
        )
        try:
            with db.session.begin_nested():
                db.session.add(user)
        except IntegrityError as exc:
            if "uq_users_referral_code" not in str(exc.orig) or attempt == _CODE_ATTEMPTS - 1:
                raise
            continue
        break
    if referrer is not None:
        _write_referral_chain(user, referrer)
    return user


def _write_referral_chain(user: User, referrer: User) -> None:
    max_tier = get_settings().max_tier_level
    upline = db.session.execute(
        select(Referral.referrer_id, Referral.tier)
        .where(Referral.referred_user_id == referrer.id, Referral.tier < max_tier)
        .order_by(Referral.tier)
    ).all()
    rows = [Referral(referrer_id=referrer.id, referred_user_id=user.id, tier=1)]
    rows += [
        Referral(referrer_id=ancestor_id, referred_user_id=user.id, tier=tier + 1)
        for ancestor_id, tier in upline
    ]
    db.session.add_all(rows)
    db.session.flush()
