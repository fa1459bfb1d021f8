from __future__ import annotations

from decimal import Decimal

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import func, select, text

from app import create_app
from app.config import DEV_SECRET_KEY, Config, ConfigurationError, check_config
from app.extensions import db
from app.models import AuditEntry, MLMTier, PayoutAccount, Referral, User
from app.services.accounts.passwords import verify_password
from app.services.money.ledger import balances
from app.services.payouts.payout_accounts import payee_details, save_payee_details
from app.services.program.demo import DEMO_PASSWORD
from tests.factories import make_user


def test_seed_restores_missing_tiers_without_overwriting(runner):
    db.session.execute(text("DELETE FROM mlm_tiers WHERE level = 3"))
    db.session.execute(text("UPDATE mlm_tiers SET commission_rate = 0.2 WHERE level = 1"))
    db.session.commit()
    result = runner.invoke(args=["seed"])
    assert result.exit_code == 0, result.output
    rates = dict(db.session.execute(select(MLMTier.level, MLMTier.commission_rate)).all())
    assert {level: str(rate) for level, rate in rates.items()} == {
        1: "0.200000",
        2: "0.050000",
        3: "0.025000",
    }


def test_create_admin(runner):
    result = runner.invoke(
        args=["create-admin", "--email", "Boss@Example.com", "--username", "boss"],
        input="a-long-password\na-long-password\n",
    )
    assert result.exit_code == 0, result.output
    admin = db.session.execute(select(User).where(User.username == "boss")).scalar_one()
    assert admin.is_admin
    assert verify_password(admin.password_hash, "a-long-password")


def test_create_admin_with_taken_email_fails_cleanly(runner):
    args = ["create-admin", "--email", "boss@example.com", "--username", "boss"]
    runner.invoke(args=args, input="a-long-password\na-long-password\n")
    result = runner.invoke(args=args, input="a-long-password\na-long-password\n")
    assert result.exit_code != 0
    assert "already exists" in result.output


def test_create_admin_with_an_invalid_email_fails_cleanly(runner):
    args = ["create-admin", "--email", "boss@@example", "--username", "boss"]
    result = runner.invoke(args=args, input="a-long-password\na-long-password\n")
    assert result.exit_code == 2, result.output
    assert "not a valid email address" in result.output
    assert db.session.scalar(select(func.count()).select_from(User)) == 0


def test_demo_builds_a_network_several_tiers_deep_and_is_idempotent(runner):
    first = runner.invoke(args=["demo"])
    assert first.exit_code == 0, first.output
    assert DEMO_PASSWORD in first.output
    counts = (
        db.session.scalar(select(func.count()).select_from(User)),
        db.session.scalar(select(func.count()).select_from(Referral)),
    )
    second = runner.invoke(args=["demo"])
    assert second.exit_code == 0
    assert "0 users created" in second.output
    assert counts == (
        db.session.scalar(select(func.count()).select_from(User)),
        db.session.scalar(select(func.count()).select_from(Referral)),
    )
    assert db.session.scalar(select(func.max(Referral.tier))) == 3
    assert db.session.scalar(select(func.count()).where(User.is_admin)) == 1
    # The demo affiliates joined as the form has them: with the terms in force accepted.
    assert set(db.session.scalars(select(User.terms_version).where(~User.is_admin))) == {1}
    # The demo shows payouts: carol can request one at once (the minimum is 50.00).
    carol = db.session.scalar(select(User).where(User.username == "carol"))
    assert balances(carol.id).available == Decimal("102.00")


def test_demo_generates_a_large_network_below_alice_once(runner):
    result = runner.invoke(args=["demo", "--users", "40"])
    assert result.exit_code == 0, result.output
    assert "Generated 40 users" in result.output
    generated = db.session.scalar(select(func.count()).where(User.email.like("%@gen.example.com")))
    assert generated == 40
    gen_user = db.session.get(User, "gen7")
    assert verify_password(gen_user.password_hash, DEMO_PASSWORD)  # they can log in
    again = runner.invoke(args=["demo", "--users", "40"])
    assert again.exit_code != 0
    assert "already holds a generated network" in again.output


# Fernet keys: rotation and the production refusals -------------------------------------

KEY_A, KEY_B = (Fernet.generate_key().decode() for _ in range(2))
PAYEE = {"name": "Jane Doe", "email": "jane@example.com", "iban": "DE89370400440532013000"}


def _payees_written_with_key_a(app, monkeypatch, count: int) -> list[User]:
    monkeypatch.setitem(app.config, "FERNET_KEYS", KEY_A)
    users = [make_user() for _ in range(count)]
    for user in users:
        save_payee_details(user.id, PAYEE)
    db.session.commit()
    return users


def test_rotate_keys_lets_the_old_key_be_dropped(app, runner, monkeypatch):
    users = _payees_written_with_key_a(app, monkeypatch, 5)
    before = db.session.scalars(select(PayoutAccount.payee_details)).all()
    monkeypatch.setitem(app.config, "FERNET_KEYS", f"{KEY_B},{KEY_A}")
    result = runner.invoke(args=["rotate-keys", "--batch-size", "2"])
    assert result.exit_code == 0, result.output
    assert "Re-encrypted 5 payee details; 0 already used the newest key." in result.output
    after = db.session.scalars(select(PayoutAccount.payee_details)).all()
    assert not set(before) & set(after)
    again = runner.invoke(args=["rotate-keys"])  # idempotent: nothing left to do
    assert "Re-encrypted 0 payee details; 5 already used the newest key." in again.output
    assert db.session.scalars(select(PayoutAccount.payee_details)).all() == after

    monkeypatch.setitem(app.config, "FERNET_KEYS", KEY_B)  # the old key is gone
    for user in users:
        assert payee_details(user.id).iban == PAYEE["iban"]
    raw = "\n".join(db.session.scalars(text("SELECT CAST(a AS text) FROM payout_accounts a")))
    for secret in (*PAYEE.values(), "Jane", "3704"):
        assert secret not in raw
    entry = db.session.scalars(
        select(AuditEntry).where(AuditEntry.action == "payout_accounts.keys_rotated")
    ).first()
    assert entry.details == {"rotated": 5, "already_current": 0, "unreadable": 0}


def test_rotate_keys_names_rows_no_key_reads_and_fails(app, runner, monkeypatch):
    _payees_written_with_key_a(app, monkeypatch, 1)
    monkeypatch.setitem(app.config, "FERNET_KEYS", KEY_B)
    result = runner.invoke(args=["rotate-keys"])
    assert result.exit_code == 1
    account_id = db.session.scalars(select(PayoutAccount.id)).one()
    assert "1 payout accounts have details no key in FERNET_KEYS reads" in result.output
    assert account_id in result.output


def test_rotate_keys_needs_a_key(app, runner, monkeypatch):
    monkeypatch.setitem(app.config, "FERNET_KEYS", "")
    result = runner.invoke(args=["rotate-keys"])
    assert result.exit_code == 1 and "FERNET_KEYS is not set" in result.output


def _production(**overrides: str) -> dict[str, str]:
    return {
        "APP_ENV": "production",
        "SECRET_KEY": "s" * 48,
        "FERNET_KEYS": KEY_A,
        "MAIL_URL": "smtp://127.0.0.1:25?starttls=off",
        **overrides,
    }


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (_production(FERNET_KEYS=""), "APP_ENV=production needs FERNET_KEYS"),
        (_production(FERNET_KEYS=" , "), "APP_ENV=production needs FERNET_KEYS"),
        (_production(SECRET_KEY=DEV_SECRET_KEY), "needs its own SECRET_KEY"),
        (_production(SECRET_KEY=""), "needs its own SECRET_KEY"),
        (_production(MAIL_URL=""), "APP_ENV=production needs MAIL_URL"),
        (_production(APP_ENV="prod"), "APP_ENV must be one of development, production"),
        (_production(FERNET_KEYS=f"{KEY_A},not-a-key"), "key 2 is not a Fernet key"),
        ({"FERNET_KEYS": "not-a-key"}, "key 1 is not a Fernet key"),  # in development too
    ],
)
def test_the_app_refuses_to_start_with_unsafe_settings(config, message):
    with pytest.raises(ConfigurationError, match=message) as refused:
        create_app(config)
    assert "not-a-key" not in str(refused.value)  # a key is never echoed


def test_production_starts_with_its_own_secret_and_a_key(monkeypatch):
    check_config({**Config().__dict__, **_production()})
    # The variables are read from the environment.
    monkeypatch.setenv("APP_ENV", "Production")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setenv("FERNET_KEYS", KEY_A)
    with pytest.raises(ConfigurationError, match="needs its own SECRET_KEY"):
        create_app()
