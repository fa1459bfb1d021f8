"""Accounts: registration with its referral chain, authentication, password changes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import bindparam, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import make_transient_to_detached

from app.extensions import db
from app.models import User
from app.models.base import new_id
from app.services.accounts.emails import normalize_email
from app.services.accounts.passwords import hash_password, needs_rehash, verify_password
from app.services.accounts.sessions import end_all_sessions
from app.services.mail.outbox import queue_mail
from app.services.money.fraud import flag_suspicious_referral
from app.services.network.referral_codes import generate_referral_code, normalize_code
from app.services.network.referrals import write_referral_chain
from app.services.ops import audit
from app.services.program.identity import program_identity
from app.services.program.program import get_settings

MIN_PASSWORD_LENGTH = 10
# Shown only when every other field is fine and the email is taken, and worded so that it
# does not say which (the form-level error, not the email field's): see register_user.
NOT_CREATED = (
    "We could not create an account with these details. "
    "If you already have an account, log in instead."
)
INVALID_EMAIL = "Enter a valid email address, like name@example.com."
# For an operator (flask create-admin), who may know; never shown at registration.
EMAIL_TAKEN = "An account with this email already exists."
USERNAME_TAKEN = "This username is taken. Try another."
TERMS_CHANGED = (
    "The terms were updated while you were signing up: read them and tick the box again."
)
NOT_THE_CURRENT_ONE = "That is not your current password."
# The key of an error about the whole form rather than one field.
FORM = "form"
# Which unique index a lost race hit, and the form field and message it means.
_UNIQUE_FIELDS = {
    "uq_users_email_lower": ("email", EMAIL_TAKEN),
    "uq_users_username_lower": ("username", USERNAME_TAKEN),
}
_CODE_ATTEMPTS = 5


@dataclass
class RegistrationRejected(Exception):
    """What is wrong with a registration, by form field; nothing was written."""

    errors: dict[str, str] = field(default_factory=dict)


def password_problem(password: str, *, email: str = "", username: str = "") -> str | None:
    """Why ``password`` is not acceptable, or ``None`` when it is."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"Use at least {MIN_PASSWORD_LENGTH} characters."
    lowered = password.strip().lower()
    if lowered in {email.strip().lower(), username.strip().lower()}:
        return "Your password cannot be your email address or username."
    return None


def find_user_by_email(email: str) -> User | None:
    """The account of this mailbox, however its address is spelled (case, IDN or punycode)."""
    normalized = normalize_email(email)
    if normalized is None:
        return None
    return db.session.execute(
        select(User).where(func.lower(User.email) == normalized.lower())
    ).scalar_one_or_none()


def find_user_by_code(raw_code: str) -> User | None:
    code = normalize_code(raw_code)
    if code is None:
        return None
    return db.session.execute(select(User).where(User.referral_code == code)).scalar_one_or_none()


# Built once: an ORM insert built per call (values, ORM bulk-insert handling, cache key) cost
# more than the database's work for it (docs/benchmarks.md, issue 14).
_USERS = User.__table__
_INSERT_USER = (
    insert(_USERS)
    .values(
        {
            name: bindparam(name)
            for name in (
                "id",
                "username",
                "email",
                "password_hash",
                "referral_code",
                "referred_by",
                "is_admin",
                "signup_ip_hash",
                "terms_version",
                "terms_accepted_at",
            )
        }
    )
    .on_conflict_do_nothing(index_elements=["referral_code"])
    .returning(_USERS.c.created_at, _USERS.c.updated_at)
)


def create_user(
    *,
    username: str,
    email: str,
    password: str,
    referrer: User | None = None,
    is_admin: bool = False,
    signup_ip_hash: str | None = None,
    terms_version: int | None = None,
) -> User:
    """Create a user and, when referred, their referral chain (one row per upline tier).

    A referral code collision is retried (``ON CONFLICT DO NOTHING`` on the unique code, so
    no savepoint is needed); any other unique violation raises ``IntegrityError``.
    The email is stored normalized (``normalize_email``); an invalid one raises ``ValueError``.
    ``terms_version``: the program terms the user accepted, now. Flushes, never commits.
    Two statements whatever the network's size.
    """
    normalized = normalize_email(email)
    if normalized is None:
        raise ValueError(f"{email!r} is not a valid email address")
    values = {
        "id": new_id(),
        "username": username.strip(),
        "email": normalized,
        "password_hash": hash_password(password),
        "referred_by": referrer.id if referrer else None,
        "is_admin": is_admin,
        "signup_ip_hash": signup_ip_hash,
        "terms_version": terms_version,
        "terms_accepted_at": datetime.now(UTC) if terms_version is not None else None,
    }
    connection = db.session.connection()
    for _ in range(_CODE_ATTEMPTS):
        code = generate_referral_code()
        inserted = connection.execute(_INSERT_USER, {"referral_code": code, **values})
        inserted = inserted.one_or_none()
        if inserted is not None:
            break
    else:
        raise RuntimeError("could not find a free referral code")
    if referrer is not None:
        write_referral_chain(values["id"], referrer.id)
    user = User(referral_code=code, **values)
    user.created_at, user.updated_at = inserted
    make_transient_to_detached(user)
    db.session.add(user)  # a new id: the session cannot hold this user yet
    return user


def check_registration(
    *,
    username: str | None,
    email: str | None,
    password: str | None,
    referral_code: str | None,
    terms_version: int | None = None,
    form_refused: bool = False,
) -> tuple[dict[str, str], User | None]:
    """What the database and the password rules say about a registration: errors by form
    field (``FORM`` for the whole form), and the referrer its code names.

    A field given as ``None`` was refused by the form already and is not checked again, so a
    form's own errors and these are shown together, in one answer. The email is looked up
    last, only when nothing else is wrong (nor anything the form found: ``form_refused``), and
    a taken one gets the neutral ``NOT_CREATED``: a probe with a taken username (or any other
    mistake) learns nothing about the email, and one that gets this far creates an account
    whenever the email is free. ``terms_version``, the program terms version the form showed,
    must be the one in force (else ``accept_terms``: nobody accepts a text they were not
    shown). Reads only.
    """
    errors: dict[str, str] = {}
    normalized = None
    if email is not None:
        normalized = normalize_email(email)
        if normalized is None:
            errors["email"] = INVALID_EMAIL
    referrer = None
    if referral_code is not None and referral_code.strip():
        referrer = find_user_by_code(referral_code)
        if referrer is None:
            errors["referral_code"] = "We don't know this referral code. Check it and try again."
    elif referral_code is not None and not get_settings().allow_direct_signups:
        errors["referral_code"] = "You need a referral code to join this program."
    if username is not None and _username_taken(username):
        errors["username"] = USERNAME_TAKEN
    if password is not None:
        problem = password_problem(password, email=email or "", username=username or "")
        if problem:
            errors["password"] = problem
    if terms_version is not None and terms_version != program_identity().terms_version:
        errors["accept_terms"] = TERMS_CHANGED
    if not errors and not form_refused and normalized and find_user_by_email(normalized):
        errors[FORM] = NOT_CREATED
    return errors, referrer


def register_user(
    *,
    username: str,
    email: str,
    password: str,
    referral_code: str,
    ip_hash: str,
    terms_version: int,
) -> User:
    """Register a new affiliate, referred by the owner of ``referral_code`` if one is given,
    who accepted ``terms_version`` of the program terms.

    Checks the registration (``check_registration``: taken username, unknown code, direct
    sign-ups allowed, the password rules, the terms version in force, then the taken email)
    and raises ``RegistrationRejected`` with a message per field, writing nothing. The unique
    indexes stay the last line against a concurrent duplicate; after a rejection the caller
    rolls the session back. Suspicious referrals are flagged, not refused. Audited; the welcome
    mail (with the shared link) is queued in the same transaction. Flushes only.
    """
    errors, referrer = check_registration(
        username=username,
        email=email,
        password=password,
        referral_code=referral_code,
        terms_version=terms_version,
    )
    if errors:
        raise RegistrationRejected(errors)

    try:
        user = create_user(
            username=username,
            email=email,
            password=password,
            referrer=referrer,
            signup_ip_hash=ip_hash,
            terms_version=terms_version,
        )
    except IntegrityError as exc:  # lost a race with a concurrent registration
        problem = unique_violation(exc)
        if problem is None:
            raise
        errors = {FORM: NOT_CREATED} if problem[0] == "email" else dict([problem])
        raise RegistrationRejected(errors) from exc
    audit.record_own(
        "user.registered",
        user.id,
        ip_hash,
        referrer_id=referrer.id if referrer else None,
        terms_version=terms_version,
    )
    if referrer is not None:
        flag_suspicious_referral(user, referrer, ip_hash)
    queue_mail(user, "welcome")
    return user


def unique_violation(exc: IntegrityError) -> tuple[str, str] | None:
    """(field, message) when ``exc`` is a taken email or username, else ``None``."""
    for index, problem in _UNIQUE_FIELDS.items():
        if index in str(exc.orig):
            return problem
    return None


def _username_taken(username: str) -> bool:
    return bool(
        db.session.scalar(
            select(func.count()).where(func.lower(User.username) == username.strip().lower())
        )
    )


def authenticate(email: str, password: str) -> User | None:
    """The user with these credentials, or ``None`` — the same answer for either mistake."""
    user = find_user_by_email(email)
    if user is None:
        hash_password(password)  # spend the same time as a real check
        return None
    if not verify_password(user.password_hash, password):
        return None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def password_change_problems(
    user: User, current: str | None, new: str | None, ip_hash: str
) -> dict[str, str]:
    """What is wrong with a password change, by field, all at once. A field given as ``None``
    was refused by the form already and is not checked. A wrong current password is audited
    (``user.password_change_failed``) so guessing shows. Flushes only."""
    errors: dict[str, str] = {}
    if current is not None and not verify_password(user.password_hash, current):
        audit.record_own("user.password_change_failed", user.id, ip_hash)
        errors["current_password"] = NOT_THE_CURRENT_ONE
    if new is not None:
        problem = password_problem(new, email=user.email, username=user.username)
        if problem:
            errors["new_password"] = problem
    return errors


def change_password(user: User, current: str, new: str, ip_hash: str) -> dict[str, str]:
    """Change the password after checking the current one; returns errors by field
    (``password_change_problems``), and changes nothing when there are any.

    A change is audited and ends every session of the user (``end_all_sessions``): the caller
    signs the current one in again. Flushes only.
    """
    errors = password_change_problems(user, current, new, ip_hash)
    if errors:
        return errors
    user.password_hash = hash_password(new)
    audit.record_own("user.password_changed", user.id, ip_hash)
    end_all_sessions(user, reason="password_changed", ip_hash=ip_hash)
    return {}
