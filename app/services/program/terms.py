"""The program's terms: versions an admin publishes (append-only, numbered 1, 2, ...), and
the version each affiliate accepted. The text is plain: blank lines separate paragraphs,
lines starting with "- " are list items, a line starting with "# " is a heading; it is
shown escaped, never as HTML."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from app.extensions import db
from app.models import ProgramTerms, ReferralProgramSettings, User
from app.services.ops import audit
from app.services.program.identity import forget_identity, program_identity

MAX_TERMS_LENGTH = 20_000
# Version 1, as migration 0021 seeds it.
FIRST_TERMS = """These are the program's starting terms. An admin can replace them.

- You earn a commission on payments made by the people who join through your link, and, when the program has several tiers, by the people they bring in, at the rates shown on the program page.
- A commission waits through the hold period before it can be paid out, so refunds land first. A refunded or disputed payment cancels its commission.
- Buying through your own link, or referring yourself, earns nothing. Commissions under review are held until an admin decides.
- Payouts are made once your available balance reaches the minimum payout."""  # noqa: E501


class TermsRefused(Exception):
    """Bad terms text, or an acceptance of a version that is no longer in force."""


@dataclass(frozen=True)
class Block:
    kind: str  # "p", "ul" or "h"
    lines: tuple[str, ...]


def current_terms() -> ProgramTerms | None:
    return db.session.scalar(select(ProgramTerms).order_by(ProgramTerms.version.desc()).limit(1))


def terms_version(version: int) -> ProgramTerms | None:
    return db.session.get(ProgramTerms, version)


def seed_first_terms() -> None:
    """Version 1 where missing. Idempotent; never overwrites."""
    db.session.execute(
        insert(ProgramTerms)
        .values(version=1, body=FIRST_TERMS)
        .on_conflict_do_nothing(index_elements=["version"])
    )


def _normalized(body: str) -> str:
    lines = [line.rstrip() for line in body.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    return "\n".join(lines).strip()


def publish_terms(body: str, *, actor_id: str | None) -> ProgramTerms | None:
    """Publish ``body`` as the next version, unless it is the text in force (then None,
    nothing written). Empty or too long: ``TermsRefused``. Versions are taken under the
    settings row's lock, so two admins publishing at once get consecutive versions. Audited
    (``program.terms_published``). Flushes."""
    text = _normalized(body)
    if not text:
        raise TermsRefused("Write the terms: they cannot be empty.")
    if len(text) > MAX_TERMS_LENGTH:
        raise TermsRefused(f"At most {MAX_TERMS_LENGTH:,} characters (this is {len(text):,}).")
    db.session.execute(select(ReferralProgramSettings.id).with_for_update())
    current = current_terms()
    if current is not None and current.body == text:
        return None
    terms = ProgramTerms(version=(current.version if current else 0) + 1, body=text)
    db.session.add(terms)
    db.session.flush()
    audit.record(
        "program.terms_published",
        actor_id=actor_id,
        subject_type="terms",
        subject_id=str(terms.version),
        version=terms.version,
        previous_version=current.version if current else None,
        length=len(text),
    )
    forget_identity()
    return terms


def accept_terms(user: User, version: int, *, ip_hash: str | None = None) -> bool:
    """Record that ``user`` accepted ``version``, which must be the version in force (else
    ``TermsRefused``: they read an older text). Accepting it again changes nothing (False).
    Audited (``user.terms_accepted``). Flushes."""
    current = program_identity().terms_version
    if version != current:
        raise TermsRefused(
            f"The terms changed while you were reading them: read version {current} and accept it."
        )
    if user.terms_version == version:
        return False
    user.terms_version = version
    user.terms_accepted_at = datetime.now(UTC)
    audit.record_own("user.terms_accepted", user.id, ip_hash, version=version)
    db.session.flush()
    return True


def needs_acceptance(user: User) -> bool:
    """An affiliate who has not accepted the version in force (admins write the terms)."""
    if not user.is_authenticated or user.is_admin:
        return False
    return (user.terms_version or 0) < program_identity().terms_version


def blocks(body: str) -> list[Block]:
    """The text as paragraphs, lists and headings (each line escaped when rendered)."""
    result: list[Block] = []
    for chunk in _normalized(body).split("\n\n"):
        lines = [line.strip() for line in chunk.split("\n") if line.strip()]
        if not lines:
            continue
        if all(line.startswith("- ") for line in lines):
            result.append(Block("ul", tuple(line[2:].strip() for line in lines)))
        elif len(lines) == 1 and lines[0].startswith("# "):
            result.append(Block("h", (lines[0][2:].strip(),)))
        else:
            result.append(Block("p", tuple(lines)))
    return result
