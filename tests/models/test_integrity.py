"""Each integrity rule holds in PostgreSQL itself, whatever the application does."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError

from app.extensions import db
from app.models import LedgerEntry, PayoutApproval, User
from tests.factories import make_chain, make_payout, make_sale, make_user


def _insert_fails(sql: str, constraint: str, **params: object) -> None:
    with pytest.raises(IntegrityError) as failure:
        db.session.execute(text(sql), params)
        db.session.flush()
    db.session.rollback()
    assert constraint in str(failure.value.orig)


def _user_sql(**overrides: str) -> str:
    values = {
        "id": "'u-new'",
        "username": "'newbie'",
        "email": "'newbie@example.com'",
        "password_hash": "'x'",
        "referral_code": "'NEWCODE1'",
        "referred_by": "NULL",
    }
    values.update(overrides)
    return f"INSERT INTO users ({', '.join(values)}) VALUES ({', '.join(values.values())})"


def test_user_cannot_refer_themselves():
    _insert_fails(_user_sql(referred_by="'u-new'"), "ck_users_not_self_referred")


def test_referral_cannot_point_at_the_same_user():
    user = make_user()
    _insert_fails(
        "INSERT INTO referrals (id, referrer_id, referred_user_id) VALUES ('r1', :u, :u)",
        "ck_referrals_not_self_referral",
        u=user.id,
    )


def test_one_referrer_per_user_per_tier():
    _, child = make_chain(2)
    other = make_user()
    _insert_fails(
        "INSERT INTO referrals (id, referrer_id, referred_user_id, tier) VALUES ('r1', :o, :c, 1)",
        "uq_referrals_referred_user_id_tier",
        o=other.id,
        c=child.id,
    )


def test_referral_codes_are_unique():
    user = make_user()
    _insert_fails(_user_sql(referral_code=f"'{user.referral_code}'"), "uq_users_referral_code")


def test_email_is_unique_whatever_its_case():
    make_user(email="Someone@Example.com")
    _insert_fails(_user_sql(email="'someone@EXAMPLE.com'"), "uq_users_email_lower")


def test_referrer_must_exist():
    _insert_fails(_user_sql(referred_by="'nobody'"), "fk_users_referred_by_users")


@pytest.mark.parametrize("status", ["active", "", "PENDING"])
def test_referral_status_is_checked(status):
    root, child = make_chain(2)
    db.session.execute(text("DELETE FROM referrals"))
    _insert_fails(
        "INSERT INTO referrals (id, referrer_id, referred_user_id, status) "
        "VALUES ('r1', :r, :c, :s)",
        "ck_referrals_status",
        r=root.id,
        c=child.id,
        s=status,
    )


def _referral_id() -> str:
    make_chain(2)
    return db.session.execute(text("SELECT id FROM referrals LIMIT 1")).scalar_one()


def _commission_sql(**overrides: str) -> str:
    values = {
        "id": "'c1'",
        "user_id": ":u",
        "referral_id": ":r",
        "sale_id": ":s",
        "amount": "1.00",
        "gross_amount": "1.00",
        "base_amount": "10.00",
        "rate": "0.1",
        "payable_at": "now()",
    }
    values.update(overrides)
    return f"INSERT INTO commissions ({', '.join(values)}) VALUES ({', '.join(values.values())})"


def _commission_params() -> dict[str, str]:
    referral_id = _referral_id()
    user_id, buyer_id = db.session.execute(
        text("SELECT referrer_id, referred_user_id FROM referrals WHERE id = :r"),
        {"r": referral_id},
    ).one()
    sale_id = make_sale(db.session.get(User, buyer_id), accrue=False)
    return {"u": user_id, "r": referral_id, "s": sale_id}


@pytest.mark.parametrize(
    ("overrides", "constraint"),
    [
        ({"amount": "2.00"}, "ck_commissions_amount_within_gross"),
        ({"rate": "1.5"}, "ck_commissions_rate_fraction"),
        ({"status": "'paid'"}, "ck_commissions_paid_by_payout"),
        ({"clawed_back": "1.50"}, "ck_commissions_clawback_range"),
    ],
)
def test_commission_terms_are_checked(overrides, constraint):
    _insert_fails(_commission_sql(**overrides), constraint, **_commission_params())


def test_one_commission_per_sale_and_tier():
    params = _commission_params()
    db.session.execute(text(_commission_sql()), params)
    _insert_fails(_commission_sql(id="'c2'"), "uq_commissions_sale_id_tier", **params)


def test_sales_are_unique_per_provider_and_external_id():
    make_sale(None, external_id="pi_1", provider="stripe", accrue=False)
    _insert_fails(
        "INSERT INTO sales (id, provider, external_id) VALUES ('s9', 'stripe', 'pi_1')",
        "uq_sales_provider_external_id",
    )


def test_a_sale_amount_comes_with_its_time():
    _insert_fails(
        "INSERT INTO sales (id, provider, external_id, amount) VALUES ('s9', 'stripe', 'x', 1)",
        "ck_sales_amount_with_occurred_at",
    )


def test_the_ledger_is_append_only():
    _, buyer = make_chain(2)
    make_sale(buyer)
    with pytest.raises(DBAPIError, match="append-only"):
        db.session.execute(text("UPDATE ledger_entries SET amount = amount + 1"))
    db.session.rollback()
    with pytest.raises(DBAPIError, match="append-only"):
        db.session.execute(text("DELETE FROM ledger_entries"))
    db.session.rollback()


def test_commission_status_is_checked():
    _insert_fails(
        _commission_sql(status="'approved'"), "ck_commissions_status", **_commission_params()
    )


def test_commission_amount_is_non_negative():
    _insert_fails(
        _commission_sql(amount="-0.01"),
        "ck_commissions_amount_non_negative",
        **_commission_params(),
    )


@pytest.mark.parametrize("table", ["commissions", "referrals"])
def test_tier_is_at_least_one(table):
    params = _commission_params()
    if table == "commissions":
        _insert_fails(_commission_sql(tier="0"), "ck_commissions_tier_positive", **params)
    else:
        _insert_fails(
            "INSERT INTO referrals (id, referrer_id, referred_user_id, tier) "
            "VALUES ('r9', :u, :other, 0)",
            "ck_referrals_tier_positive",
            u=params["u"],
            other=make_user().id,
        )


def _payout_sql(**overrides: str) -> str:
    values = {"id": "'p1'", "user_id": ":u", "amount": "50.00", "payment_method": "'stripe'"}
    values.update(overrides)
    return f"INSERT INTO payouts ({', '.join(values)}) VALUES ({', '.join(values.values())})"


def test_payout_status_is_checked():
    _insert_fails(_payout_sql(status="'cancelled'"), "ck_payouts_status", u=make_user().id)


def test_payout_method_is_checked():
    _insert_fails(
        _payout_sql(payment_method="'paypal'"), "ck_payouts_payment_method", u=make_user().id
    )


@pytest.mark.parametrize("amount", ["0", "-5"])
def test_payout_amount_is_positive(amount):
    _insert_fails(_payout_sql(amount=amount), "ck_payouts_amount_positive", u=make_user().id)


def test_transaction_reference_is_unique_when_present():
    user_id = make_user().id
    done = {"status": "'completed'", "completed_at": "now()"}  # one open payout per user
    db.session.execute(text(_payout_sql(id="'p1'", **done)), {"u": user_id})
    db.session.execute(text(_payout_sql(id="'p2'", **done)), {"u": user_id})  # two NULLs
    db.session.execute(text(_payout_sql(id="'p3'", transaction_reference="'tr_1'")), {"u": user_id})
    _insert_fails(
        _payout_sql(id="'p4'", transaction_reference="'tr_1'"),
        "uq_payouts_transaction_reference",
        u=user_id,
    )


@pytest.mark.parametrize("rate", ["-0.01", "1.000001"])
def test_tier_rate_is_a_fraction(rate):
    _insert_fails(
        f"INSERT INTO mlm_tiers (id, level, commission_rate) VALUES ('t9', 9, {rate})",
        "ck_mlm_tiers_rate_fraction",
    )


def test_tier_level_is_unique():
    _insert_fails(
        "INSERT INTO mlm_tiers (id, level, commission_rate) VALUES ('t9', 1, 0.2)",
        "uq_mlm_tiers_level",
    )


def test_tier_level_is_at_least_one():
    _insert_fails(
        "INSERT INTO mlm_tiers (id, level, commission_rate) VALUES ('t9', 0, 0.2)",
        "ck_mlm_tiers_level_positive",
    )


_SETTINGS = (
    "INSERT INTO referral_program_settings (id, max_tier_level, min_payout_amount, "
    "payout_frequency, default_commission_rate{extra_col}) VALUES ('s2', {max_tier}, {minimum}, "
    "{frequency}, {rate}{extra_val})"
)


def _settings_sql(
    max_tier="3", minimum="50", frequency="'monthly'", rate="0.1", extra_col="", extra_val=""
):
    return _SETTINGS.format(
        max_tier=max_tier,
        minimum=minimum,
        frequency=frequency,
        rate=rate,
        extra_col=extra_col,
        extra_val=extra_val,
    )


def test_only_one_settings_row():
    _insert_fails(_settings_sql(), "uq_referral_program_settings_singleton")


def test_settings_singleton_cannot_be_false():
    _insert_fails(
        _settings_sql(extra_col=", singleton", extra_val=", false"),
        "ck_referral_program_settings_singleton",
    )


def test_settings_row_cannot_be_deleted():
    with pytest.raises(DBAPIError, match="cannot be deleted"):
        db.session.execute(text("DELETE FROM referral_program_settings"))
    db.session.rollback()


@pytest.mark.parametrize(
    ("column", "value", "constraint"),
    [
        ("payout_frequency", "'yearly'", "ck_referral_program_settings_payout_frequency"),
        ("max_tier_level", "0", "ck_referral_program_settings_max_tier_positive"),
        ("min_payout_amount", "-1", "ck_referral_program_settings_min_payout_non_negative"),
        ("default_commission_rate", "1.5", "ck_referral_program_settings_default_rate_fraction"),
    ],
)
def test_settings_values_are_checked(column, value, constraint):
    with pytest.raises(IntegrityError) as failure:
        db.session.execute(text(f"UPDATE referral_program_settings SET {column} = {value}"))
    db.session.rollback()
    assert constraint in str(failure.value.orig)


def test_seeded_defaults_are_in_place():
    rows = db.session.execute(
        text("SELECT level, commission_rate FROM mlm_tiers ORDER BY level")
    ).all()
    assert [(level, str(rate)) for level, rate in rows] == [
        (1, "0.100000"),
        (2, "0.050000"),
        (3, "0.025000"),
    ]
    settings = db.session.execute(
        text(
            "SELECT max_tier_level, min_payout_amount, payout_frequency, is_mlm_enabled, "
            "default_commission_rate FROM referral_program_settings"
        )
    ).one()
    assert tuple(map(str, settings)) == ("3", "50.0000", "monthly", "True", "0.100000")


@pytest.mark.parametrize(
    ("columns", "values", "constraint"),
    [
        ("provider, stripe_account_id", "'paypal', 'acct_1'", "ck_payout_accounts_provider"),
        ("provider", "'stripe'", "ck_payout_accounts_stripe_has_account"),
        (
            "provider, stripe_account_id",
            "'lemon_squeezy', 'acct_1'",
            "ck_payout_accounts_stripe_has_account",
        ),
        (
            "provider, stripe_account_id, payee_details",
            "'stripe', 'acct_1', 'x'",
            "ck_payout_accounts_details_for_lemon_squeezy",
        ),
        (
            "provider, payouts_enabled",
            "'lemon_squeezy', true",
            "ck_payout_accounts_readiness_for_stripe",
        ),
        (
            "provider, stripe_account_id, country",
            "'stripe', 'acct_1', 'us'",
            "ck_payout_accounts_country_code",
        ),
    ],
)
def test_payout_accounts_keep_only_what_their_provider_needs(columns, values, constraint):
    user = make_user()
    _insert_fails(
        f"INSERT INTO payout_accounts (id, user_id, {columns}) VALUES ('pa-1', :user, {values})",
        constraint,
        user=user.id,
    )


def test_one_payout_account_per_user_and_provider():
    user = make_user()
    insert = (
        "INSERT INTO payout_accounts (id, user_id, provider, stripe_account_id) "
        "VALUES (:id, :user, 'stripe', :account)"
    )
    db.session.execute(text(insert), {"id": "pa-1", "user": user.id, "account": "acct_1"})
    _insert_fails(
        insert, "uq_payout_accounts_user_provider", id="pa-2", user=user.id, account="acct_2"
    )


def test_a_payout_has_each_kind_of_ledger_entry_once():
    earner, buyer = make_chain(2)
    make_sale(buyer, "1000.00", days_ago=40)
    payout = make_payout(earner, "60.00")
    second = LedgerEntry(
        user_id=earner.id,
        kind="payout",
        amount=Decimal("-60.00"),
        available_at=datetime.now(UTC),
        payout_id=payout.id,
    )
    db.session.add(second)
    with pytest.raises(IntegrityError, match="uq_ledger_entries_payout_id_kind"):
        db.session.flush()
    db.session.rollback()


def test_payout_approvals_are_append_only():
    earner, buyer = make_chain(2)
    make_sale(buyer, "1000.00", days_ago=40)
    payout = make_payout(earner, "60.00")
    admin = make_user(is_admin=True)
    db.session.add(PayoutApproval(payout_id=payout.id, admin_id=admin.id))
    db.session.commit()
    for statement in (
        "UPDATE payout_approvals SET admin_id = admin_id",
        "DELETE FROM payout_approvals",
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            db.session.execute(text(statement))
        db.session.rollback()
