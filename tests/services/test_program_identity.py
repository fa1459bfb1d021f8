"""The program's identity and terms: the name read once per request, each identity field
parsed with a clear message, terms versions that rise only when the text changes, are
append-only, and are accepted only in the version in force."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import event, select, text
from sqlalchemy.exc import DBAPIError

from app.extensions import db
from app.models import AuditEntry, User
from app.services.program import identity
from app.services.program.identity import program_identity, program_name
from app.services.program.offer import referrer_rates
from app.services.program.settings import SettingsRefused, parse_section, save_section
from app.services.program.terms import (
    FIRST_TERMS,
    TermsRefused,
    accept_terms,
    blocks,
    current_terms,
    needs_acceptance,
    publish_terms,
)
from tests.factories import make_user
from tests.services.test_program_settings import form_of


def _save_identity(**overrides: str) -> None:
    save_section(
        "identity", parse_section("identity", form_of("identity", **overrides)), actor_id=None
    )
    db.session.commit()


def test_the_name_is_the_default_until_an_admin_sets_one():
    assert program_name() == "Referral program"
    _save_identity(program_name="  Acme   Partners ")
    assert program_name() == "Acme Partners"  # saving forgot the cached identity
    db.session.expire_all()
    assert program_identity().name == "Acme Partners"


def test_the_identity_is_read_once_per_app_context(app):
    statements = []

    def count(conn, cursor, statement, *args):
        if "program_name" in statement:
            statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        with app.app_context():
            for _ in range(5):
                program_name()
                program_identity()
        with app.app_context():
            program_name()
        assert len(statements) == 2  # one per context
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


@pytest.mark.parametrize(
    ("field", "raw", "message"),
    [
        ("program_name", "   ", "Enter the program's name."),
        ("program_name", "x" * 81, "At most 80 characters."),
        ("program_description", "x" * 501, "At most 500 characters."),
        ("product_url", "javascript:alert(1)", "A web address starting with https://"),
        ("product_url", "https://", "A web address starting with https://"),
        ("product_url", "https://exa mple.com", "A web address starting with https://"),
        ("product_url", "https://[::1/app", "A web address starting with https://"),
        ("accent_color", "blue", "A colour as #rrggbb"),
        ("accent_color", "#12345", "A colour as #rrggbb"),
        ("accent_color", "#12345g", "A colour as #rrggbb"),
        ("accent_color", "#ffff00", "hard to read"),
    ],
)
def test_bad_identity_input_is_refused_with_a_message(field, raw, message):
    with pytest.raises(SettingsRefused) as refused:
        parse_section("identity", form_of("identity", **{field: raw}))
    assert message in refused.value.errors[field]


def test_identity_values_are_stored_normalised_and_audited():
    _save_identity(
        program_description=" Earn with us. ",
        product_name="Acme Notes",
        product_url="https://acme.example/notes",
        accent_color="#1A5C3B",
    )
    found = program_identity()
    assert (found.description, found.product_name) == ("Earn with us.", "Acme Notes")
    assert (found.product_url, found.accent_color) == ("https://acme.example/notes", "#1a5c3b")
    entry = db.session.scalars(
        select(AuditEntry).where(AuditEntry.action == "program.settings_changed")
    ).one()
    assert entry.details["section"] == "identity"
    assert entry.details["changes"]["accent_color"] == {"old": None, "new": "#1a5c3b"}
    _save_identity(accent_color="", product_url="")
    assert program_identity().accent_color is None and program_identity().product_url is None


def test_the_contrast_rule_uses_wcag_luminance():
    assert identity.contrast_with_white("#000000") == 21
    assert identity.contrast_with_white("#ffffff") == 1
    assert identity.parse_colour("#2f5bea") == "#2f5bea"  # the stylesheet's own blue


def test_the_first_terms_are_seeded_as_version_1():
    terms = current_terms()
    assert (terms.version, terms.body) == (1, FIRST_TERMS)
    assert program_identity().terms_version == 1


def test_publishing_changed_terms_makes_the_next_version_and_the_same_text_none():
    admin = make_user(is_admin=True)
    assert publish_terms(FIRST_TERMS + "\r\n\r\n", actor_id=admin.id) is None
    published = publish_terms("New terms.\r\n\r\n- One\r\n- Two", actor_id=admin.id)
    db.session.commit()
    assert published.version == 2 and published.body == "New terms.\n\n- One\n- Two"
    assert program_identity().terms_version == 2
    assert publish_terms("New terms.\n\n- One\n- Two  ", actor_id=admin.id) is None
    assert publish_terms("Third.", actor_id=admin.id).version == 3
    db.session.commit()
    entries = db.session.scalars(
        select(AuditEntry).where(AuditEntry.action == "program.terms_published")
    ).all()
    assert [(e.details["version"], e.details["previous_version"]) for e in entries] == [
        (2, 1),
        (3, 2),
    ]
    assert {e.actor_id for e in entries} == {admin.id}


@pytest.mark.parametrize(
    ("body", "message"), [(" \n ", "cannot be empty"), ("x" * 20_001, "At most")]
)
def test_empty_or_huge_terms_are_refused(body, message):
    with pytest.raises(TermsRefused, match=message):
        publish_terms(body, actor_id=None)
    db.session.rollback()
    assert current_terms().version == 1


def test_published_terms_cannot_be_changed_or_deleted():
    for statement in (
        "UPDATE program_terms SET body = 'changed'",
        "DELETE FROM program_terms",
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            db.session.execute(text(statement))
        db.session.rollback()
    assert current_terms().body == FIRST_TERMS


def test_accepting_records_the_version_once_and_refuses_a_stale_one():
    user = make_user()
    assert needs_acceptance(user)
    assert accept_terms(user, 1, ip_hash="ip") is True
    db.session.commit()
    assert (user.terms_version, user.terms_accepted_at is not None) == (1, True)
    assert not needs_acceptance(user)
    assert accept_terms(user, 1) is False

    publish_terms("Version two.", actor_id=None)
    db.session.commit()
    assert needs_acceptance(user)
    with pytest.raises(TermsRefused, match="read version 2"):
        accept_terms(user, 1)
    db.session.rollback()
    assert accept_terms(user, 2) is True
    db.session.commit()
    actions = db.session.scalars(
        select(AuditEntry.details).where(AuditEntry.action == "user.terms_accepted")
    ).all()
    assert [d["version"] for d in actions] == [1, 2]


def test_admins_are_never_asked_to_accept():
    assert not needs_acceptance(make_user(is_admin=True))


def test_a_version_and_its_time_are_recorded_together_or_not_at_all():
    user = make_user()
    with pytest.raises(DBAPIError, match="terms_accepted_together"):
        db.session.execute(
            text("UPDATE users SET terms_version = 1 WHERE id = :id"), {"id": user.id}
        )
    db.session.rollback()
    with pytest.raises(DBAPIError, match="fk_users_terms_version"):
        db.session.execute(
            text("UPDATE users SET terms_version = 9, terms_accepted_at = now() WHERE id = :id"),
            {"id": user.id},
        )
    db.session.rollback()
    assert db.session.get(User, user.id).terms_version is None


def test_terms_text_becomes_paragraphs_lists_and_headings_never_html():
    parsed = blocks("# Payouts\n\nFirst line\nsecond <b>line</b>\n\n- a\n- b\n\n\n")
    assert [(b.kind, b.lines) for b in parsed] == [
        ("h", ("Payouts",)),
        ("p", ("First line", "second <b>line</b>")),
        ("ul", ("a", "b")),
    ]


def test_a_referrer_earns_the_active_tiers_or_tier_one_alone_without_mlm():
    assert referrer_rates() == {1: Decimal("0.1"), 2: Decimal("0.05"), 3: Decimal("0.025")}
    values = parse_section(
        "tiers", form_of("tiers", is_mlm_enabled="", default_commission_rate="12.5")
    )
    save_section("tiers", values, actor_id=None)
    db.session.commit()
    assert referrer_rates() == {1: Decimal("0.125")}
