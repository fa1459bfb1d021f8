"""Registration writes the user and their referral chain, once, with the right tiers."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import AuditEntry, Referral, ReferralFlag, User
from app.services.accounts.accounts import (
    FORM,
    NOT_CREATED,
    RegistrationRejected,
    find_user_by_email,
    register_user,
)
from app.services.network.referral_codes import (
    CODE_ALPHABET,
    generate_referral_code,
    normalize_code,
)
from app.services.network.referrals import write_referral_chain
from app.services.program.program import get_settings
from tests.factories import PASSWORD, make_chain, make_user


def _register(code: str = "", **overrides: str) -> User:
    fields = {
        "username": "newbie",
        "email": "newbie@example.com",
        "password": PASSWORD,
        "referral_code": code,
        "ip_hash": "ip-new",
        "terms_version": 1,
    }
    fields.update(overrides)
    user = register_user(**fields)
    db.session.commit()
    return user


def _chain(user: User) -> list[tuple[int, str]]:
    rows = db.session.execute(
        select(Referral.tier, User.username)
        .join(User, User.id == Referral.referrer_id)
        .where(Referral.referred_user_id == user.id)
        .order_by(Referral.tier)
    )
    return [tuple(row) for row in rows]


def test_registration_without_referrer_creates_no_referral():
    user = _register()
    assert user.referred_by is None
    assert _chain(user) == []
    assert normalize_code(user.referral_code) == user.referral_code


def test_registration_with_a_code_records_the_referrer():
    referrer = make_user(username="ref")
    user = _register(referrer.referral_code.lower())
    assert user.referred_by == referrer.id
    assert _chain(user) == [(1, "ref")]


def test_five_deep_chain_stops_at_the_max_tier():
    chain = make_chain(5)  # chain[0] is the root
    user = _register(chain[-1].referral_code)
    expected = [(1, chain[4].username), (2, chain[3].username), (3, chain[2].username)]
    assert _chain(user) == expected
    assert get_settings().max_tier_level == 3


def test_unknown_code_is_refused_and_writes_nothing():
    with pytest.raises(RegistrationRejected) as rejected:
        _register("ZZZZZZZZ")
    assert "referral_code" in rejected.value.errors
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(User)) == 0


def test_direct_signup_refused_when_the_program_requires_a_code():
    get_settings().allow_direct_signups = False
    db.session.commit()
    with pytest.raises(RegistrationRejected) as rejected:
        _register("")
    assert rejected.value.errors == {
        "referral_code": "You need a referral code to join this program."
    }


def test_duplicate_email_in_another_case_is_refused():
    make_user(email="Taken@Example.com")
    with pytest.raises(RegistrationRejected) as rejected:
        _register(email="taken@EXAMPLE.COM")
    assert rejected.value.errors == {FORM: NOT_CREATED}


def test_an_idn_domain_and_its_punycode_are_one_mailbox():
    _register(email="idn@exämple.com")
    with pytest.raises(RegistrationRejected) as rejected:
        _register(username="other", email="idn@xn--exmple-cua.com")
    assert rejected.value.errors == {FORM: NOT_CREATED}
    db.session.rollback()
    assert db.session.scalars(select(User.email)).all() == ["idn@xn--exmple-cua.com"]
    assert find_user_by_email("IDN@EXÄMPLE.COM") is not None


def test_the_database_refuses_a_domain_that_is_not_ascii():
    make_user(email="idn@xn--exmple-cua.com")
    with pytest.raises(IntegrityError, match="email_ascii_domain"):
        db.session.execute(text("UPDATE users SET email = 'idn@exämple.com'"))
    db.session.rollback()


def test_alias_signal_sees_an_idn_domain_and_its_punycode_as_one():
    referrer = make_user(email="jane@exämple.com")
    user = _register(referrer.referral_code, email="Jane+x@XN--EXMPLE-CUA.com")
    reasons = db.session.scalars(
        select(ReferralFlag.reason).where(ReferralFlag.referred_user_id == user.id)
    )
    assert list(reasons) == ["email_alias"]


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short", "at least 10"),
        ("newbie@example.com", "cannot be your email"),
        ("NewbieNewbie", None),
        ("newbie1234", None),
    ],
)
def test_password_rules(password, message):
    if message is None:
        assert _register(password=password).id
        return
    with pytest.raises(RegistrationRejected) as rejected:
        _register(password=password, username="newbie" if "@" in password else "someone")
    assert message in rejected.value.errors["password"]


def test_password_equal_to_username_is_refused():
    with pytest.raises(RegistrationRejected) as rejected:
        _register(password="newbie-user", username="newbie-user")
    assert "cannot be your email address or username" in rejected.value.errors["password"]


def test_password_is_hashed_with_argon2id():
    assert _register().password_hash.startswith("$argon2id$")


def test_service_refuses_self_referral():
    user = make_user()
    with pytest.raises(ValueError, match="cannot refer themselves"):
        write_referral_chain(user.id, user.id)


def test_referrer_cannot_be_changed_in_the_database():
    first, second = make_user(), make_user()
    user = make_user(referrer=first)
    with pytest.raises(IntegrityError, match="referrer cannot be changed"):
        db.session.execute(
            text("UPDATE users SET referred_by = :r WHERE id = :u"), {"r": second.id, "u": user.id}
        )
    db.session.rollback()
    with pytest.raises(IntegrityError, match="referrer cannot be changed"):
        db.session.execute(
            text("UPDATE users SET referred_by = NULL WHERE id = :u"), {"u": user.id}
        )
    db.session.rollback()


def test_referral_rows_cannot_be_rewired():
    first, second = make_user(), make_user()
    make_user(referrer=first)
    with pytest.raises(IntegrityError, match="cannot be changed"):
        db.session.execute(text("UPDATE referrals SET referrer_id = :r"), {"r": second.id})
    db.session.rollback()
    db.session.execute(text("UPDATE referrals SET status = 'completed'"))  # status may change
    db.session.commit()


def test_alias_email_is_flagged_not_refused():
    referrer = make_user(email="jane.doe@gmail.com")
    user = _register(referrer.referral_code, email="JaneDoe+promo@googlemail.com")
    flags = db.session.scalars(select(ReferralFlag).where(ReferralFlag.referred_user_id == user.id))
    assert [(f.reason, f.status) for f in flags] == [("email_alias", "open")]
    assert db.session.scalar(select(func.count()).where(AuditEntry.action == "referral.flagged"))


def test_same_ip_within_a_day_is_flagged():
    referrer = make_user(signup_ip_hash="ip-shared")
    user = _register(referrer.referral_code, ip_hash="ip-shared")
    reasons = db.session.scalars(
        select(ReferralFlag.reason).where(ReferralFlag.referred_user_id == user.id)
    )
    assert list(reasons) == ["same_ip"]


def test_same_ip_after_a_day_is_not_flagged():
    referrer = make_user(signup_ip_hash="ip-shared")
    db.session.execute(
        text("UPDATE users SET created_at = now() - interval '25 hours' WHERE id = :id"),
        {"id": referrer.id},
    )
    db.session.commit()
    _register(referrer.referral_code, ip_hash="ip-shared")
    assert db.session.scalar(select(func.count()).select_from(ReferralFlag)) == 0


def test_registration_is_audited():
    user = _register()
    entry = db.session.scalars(
        select(AuditEntry).where(AuditEntry.action == "user.registered")
    ).one()
    assert entry.subject_id == user.id


def test_codes_are_short_unambiguous_and_normalized():
    code = generate_referral_code()
    assert len(code) == 8 and set(code) <= set(CODE_ALPHABET)
    assert not set("ILOU") & set(CODE_ALPHABET)
    assert normalize_code("abcd-efgh") == "ABCDEFGH"
    assert normalize_code("O1LI-2345") == "01112345"
    assert normalize_code("short") is None


def test_code_collision_is_retried(monkeypatch):
    taken = make_user().referral_code
    codes = iter([taken, "NEWCODE2"])
    monkeypatch.setattr(
        "app.services.accounts.accounts.generate_referral_code", lambda: next(codes)
    )
    assert _register().referral_code == "NEWCODE2"


def test_hundred_concurrent_registrations_under_one_referrer(app):
    referrer = make_user(username="popular")
    code = referrer.referral_code

    def register(n: int) -> str:
        with app.app_context():
            user = register_user(
                username=f"fan{n}",
                email=f"fan{n}@example.com",
                password=PASSWORD,
                referral_code=code,
                ip_hash=f"ip-{n}",
                terms_version=1,
            )
            db.session.commit()
            return user.id

    with ThreadPoolExecutor(max_workers=10) as pool:
        ids = list(pool.map(register, range(100)))
    assert len(set(ids)) == 100
    tiers = db.session.execute(
        select(Referral.tier, func.count())
        .where(Referral.referrer_id == referrer.id)
        .group_by(Referral.tier)
    ).all()
    assert tiers == [(1, 100)]
    assert db.session.scalar(select(func.count()).select_from(Referral)) == 100
