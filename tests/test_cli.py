from __future__ import annotations

from sqlalchemy import func, select, text

from app.extensions import db
from app.models import MLMTier, Referral, User
from app.services.demo import DEMO_PASSWORD
from app.services.passwords import verify_password


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
