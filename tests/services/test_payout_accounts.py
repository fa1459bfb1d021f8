"""Payee details: validation, masking, encryption at rest, audit without values."""

from __future__ import annotations

import json
import logging
import threading

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select, text

from app import crypto
from app.extensions import db
from app.models import AuditEntry, PayoutAccount
from app.services.payouts.payee_details import (
    PayeeDetails,
    mask_email,
    mask_iban,
    mask_name,
    normalize_iban,
)
from app.services.payouts.payout_accounts import (
    BOTH_DESTINATIONS,
    FORM,
    NO_DESTINATION,
    PayeeDetailsRejected,
    payee_details,
    payee_status,
    rotate_payee_details,
    save_payee_details,
)
from tests.factories import make_user

IBAN = "DE89370400440532013000"
DETAILS = {"name": "Jane Q Doe", "email": "jane@example.com", "iban": "de89 3704 0044 0532 0130 00"}


def _raw_rows() -> str:
    """Every payout account row as the database's text, the way a dump would show it."""
    return "\n".join(db.session.scalars(text("SELECT CAST(a AS text) FROM payout_accounts a")))


# IBANs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("DE89 3704 0044 0532 0130 00", "DE89370400440532013000"),
        ("gb82west12345698765432", "GB82WEST12345698765432"),
        ("NO9386011117947", "NO9386011117947"),  # the shortest
        ("FR14 2004 1010 0505 0001 3M02 606", "FR1420041010050500013M02606"),
    ],
)
def test_valid_ibans_are_normalised(raw, expected):
    assert normalize_iban(raw) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("DE89 3704 0044 0532 0130 01", "check digits do not match"),  # one digit off
        ("DE98 3704 0044 0532 0130 00", "check digits do not match"),  # swapped check digits
        ("DE89-3704-0044-0532-0130-00", "only letters, digits and spaces"),
        ("DE89 3704 0044 0532 0130 0Ä", "only letters, digits and spaces"),
        ("DE89\t370400440532013000", "only letters, digits and spaces"),
        ("DE89" + "0" * 31, "at most 34 characters"),
        ("DE89 3704 0044 0532 0130 0", "from DE has 22 characters, this one has 21"),
        ("ZZ89 3704 0044 0532 0130 00", "starts with a country code"),
        ("8937 0400 4405 3201 3000", "starts with a country code"),
    ],
)
def test_invalid_ibans_are_refused_with_a_clear_message(raw, message):
    with pytest.raises(ValueError, match=message):
        normalize_iban(raw)


# Masking --------------------------------------------------------------------------------


def test_masks_keep_initials_domain_country_and_last_four():
    assert mask_name("Jane  Q Doe") == "J*** Q*** D***"
    assert mask_email("jane.doe+pay@example.com") == "j***@example.com"
    assert mask_iban(IBAN) == "DE** **** **** **** **30 00"
    assert mask_iban("NO9386011117947") == "NO** **** ***7 947"


# Saving ---------------------------------------------------------------------------------


def test_details_round_trip_and_are_unreadable_in_the_database(app):
    user = make_user()
    assert save_payee_details(user.id, DETAILS)
    db.session.commit()
    assert payee_details(user.id) == PayeeDetails(
        name="Jane Q Doe", email="jane@example.com", iban=IBAN
    )
    raw = _raw_rows()
    for secret in (IBAN, "DE89 3704", "Jane", "jane@example.com", "example.com"):
        assert secret not in raw
    account = db.session.scalars(select(PayoutAccount)).one()
    assert account.provider == "lemon_squeezy" and account.details_updated_at is not None
    assert account.is_ready
    # The column is a Fernet token of the JSON, readable with the configured key only.
    plain = Fernet(app.config["FERNET_KEYS"]).decrypt(account.payee_details.encode())
    assert json.loads(plain)["iban"] == IBAN


def test_the_page_status_is_masked():
    user = make_user()
    save_payee_details(user.id, {**DETAILS, "iban": "", "paypal_email": "Pay.Me@Example.COM"})
    db.session.commit()
    status = payee_status(user.id)
    assert status.masked.name == "J*** Q*** D***"
    assert status.masked.email == "j***@example.com"
    assert status.masked.paypal_email == "P***@example.com"
    assert status.masked.iban is None
    assert payee_status(make_user().id).masked is None


@pytest.mark.parametrize(
    ("submitted", "errors"),
    [
        ({}, {"name": "Enter the payee's name.", "email": "Enter the payee's email address."}),
        ({**DETAILS, "iban": ""}, {FORM: NO_DESTINATION}),
        ({**DETAILS, "paypal_email": "me@example.com"}, {FORM: BOTH_DESTINATIONS}),
        ({**DETAILS, "email": "jane@"}, {"email": "valid email address"}),
        ({**DETAILS, "iban": "", "paypal_email": "paypal"}, {"paypal_email": "valid email"}),
        ({**DETAILS, "iban": "DE00 3704 0044 0532 0130 00"}, {"iban": "check digits"}),
        ({**DETAILS, "name": "Jane\x00Doe"}, {"name": "letters, spaces and punctuation"}),
        ({**DETAILS, "name": "J" * 141}, {"name": "at most 140"}),
    ],
)
def test_bad_details_are_refused_and_nothing_is_written(submitted, errors):
    user = make_user()
    with pytest.raises(PayeeDetailsRejected) as refused:
        save_payee_details(user.id, submitted)
    for name, message in errors.items():
        assert message in refused.value.errors[name]
    db.session.rollback()
    assert db.session.scalars(select(PayoutAccount)).all() == []


def test_blank_fields_keep_saved_values_and_a_new_destination_replaces_the_old():
    user = make_user()
    save_payee_details(user.id, DETAILS)
    assert save_payee_details(user.id, {"paypal_email": "jane@paypal.example"})
    db.session.commit()
    assert payee_details(user.id) == PayeeDetails(
        name="Jane Q Doe", email="jane@example.com", paypal_email="jane@paypal.example"
    )
    assert not save_payee_details(user.id, {"name": "Jane  Q Doe"})  # the same, normalised


def test_changes_are_audited_with_field_names_never_values(caplog):
    caplog.set_level(logging.DEBUG)
    user = make_user()
    save_payee_details(user.id, DETAILS, ip_hash="h")
    save_payee_details(user.id, {"iban": "GB82 WEST 1234 5698 7654 32"})
    db.session.commit()
    entries = db.session.scalars(
        select(AuditEntry)
        .where(AuditEntry.action == "payout_account.details_changed")
        .order_by(AuditEntry.created_at)
    ).all()
    assert [entry.details["fields"] for entry in entries] == [
        ["name", "email", "iban"],
        ["iban"],
    ]
    assert {entry.actor_id for entry in entries} == {user.id}
    stored = json.dumps([entry.details for entry in entries]) + caplog.text
    for secret in ("Jane", "jane@", "DE89", "3704", "GB82", "WEST"):
        assert secret not in stored


def test_details_under_a_dropped_key_show_as_unreadable(app, monkeypatch, caplog):
    user = make_user()
    save_payee_details(user.id, DETAILS)
    db.session.commit()
    monkeypatch.setitem(app.config, "FERNET_KEYS", Fernet.generate_key().decode())
    assert payee_status(user.id).unreadable
    assert payee_details(user.id) is None
    assert "cannot be decrypted" in caplog.text and "Jane" not in caplog.text
    # Entering them again works (every field needed, as nothing saved can be read).
    with pytest.raises(PayeeDetailsRejected):
        save_payee_details(user.id, {"iban": IBAN})
    db.session.rollback()
    assert save_payee_details(user.id, DETAILS)


def test_without_keys_nothing_can_be_saved(app, monkeypatch):
    monkeypatch.setitem(app.config, "FERNET_KEYS", "")
    with pytest.raises(crypto.KeysMissing):
        save_payee_details(make_user().id, DETAILS)


def test_a_rotation_batch_never_overwrites_a_concurrent_save(app, monkeypatch):
    user = make_user()
    save_payee_details(user.id, DETAILS)
    db.session.commit()
    newest = Fernet.generate_key().decode()
    monkeypatch.setitem(app.config, "FERNET_KEYS", f"{newest},{app.config['FERNET_KEYS']}")
    saved, release = threading.Event(), threading.Event()

    def save() -> None:  # holds its row lock until released
        with app.app_context():
            save_payee_details(user.id, {"iban": "GB82 WEST 1234 5698 7654 32"})
            saved.set()
            release.wait(10)
            db.session.commit()

    def rotate() -> None:  # reads the batch while the save is not committed yet
        with app.app_context():
            rotate_payee_details()
            db.session.commit()

    saver, rotator = threading.Thread(target=save), threading.Thread(target=rotate)
    saver.start()
    assert saved.wait(10)
    rotator.start()
    rotator.join(timeout=0.5)
    release.set()
    saver.join(10)
    rotator.join(10)
    assert payee_details(user.id).iban == "GB82WEST12345698765432"
    monkeypatch.setitem(app.config, "FERNET_KEYS", newest)
    assert payee_details(user.id).name == "Jane Q Doe"
