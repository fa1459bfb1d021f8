"""Changing the program settings from the admin console: each section's fields parsed and
checked (rates as percentages in, exact fractions stored), the consequences of a change
shown before it is saved, and every change audited with its old and new values."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import exists, select, text

from app.extensions import db
from app.models import ReferralProgramSettings, Sale
from app.models.program import COMMISSION_BASES, PAYOUT_FREQUENCIES
from app.services.ops import audit
from app.services.program import identity
from app.services.program.program import enqueue_backfill_if_raised, get_settings
from app.services.program.rates import bounded_decimal, is_whole, percent, percent_text, plain
from app.services.program.tiers import active_rates, cap_problem

MAX_AMOUNT = Decimal("1000000")
MAX_TIER_LEVEL = 10
MONEY_PLACES = 2


class SettingsRefused(Exception):
    """Bad input for a section: ``errors`` maps each field to its message. Nothing changed."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors


def _amount(raw: str) -> Decimal:
    return bounded_decimal(raw, MONEY_PLACES, Decimal(0), MAX_AMOUNT)


def _optional_amount(raw: str) -> Decimal | None:
    return _amount(raw) if raw.strip() else None


def _whole(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        if not is_whole(raw) or not low <= int(raw) <= high:
            raise ValueError(f"A whole number from {low} to {high}.")
        return int(raw)

    return parse


def _optional_whole(raw: str) -> int | None:
    return _whole(1, 1000)(raw) if raw.strip() else None


def _choice(choices: frozenset[str]) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw not in choices:
            raise ValueError(f"Choose one of: {', '.join(sorted(choices))}.")
        return raw

    return parse


def _flag(raw: str) -> bool:
    # An unticked checkbox is not sent: absent (empty) is off.
    return raw in ("y", "on", "true", "1")


def _currency(raw: str) -> str:
    code = raw.strip().upper()
    if len(code) != 3 or not code.isascii() or not code.isalpha():
        raise ValueError("A 3-letter ISO 4217 code, like USD.")
    return code


@dataclass(frozen=True)
class Setting:
    name: str  # the column of ``referral_program_settings``
    label: str
    parse: Callable[[str], object]
    # How the form shows it: text, textarea, percent, amount, number, flag, choice.
    kind: str = "text"
    choices: tuple[str, ...] = ()
    hint: str | None = None
    maxlength: int = 20


SECTIONS: dict[str, tuple[str, tuple[Setting, ...]]] = {
    "identity": (
        "Program identity",
        (
            Setting(
                "program_name",
                "Program name",
                identity.parse_name,
                hint="In the header, page titles, mails and shared links' pages.",
                maxlength=80,
            ),
            Setting(
                "program_description",
                "Short description",
                identity.optional_text(500),
                "textarea",
                hint="What the program is, in a sentence or two (shared links' pages).",
                maxlength=500,
            ),
            Setting(
                "product_name",
                "Product name",
                identity.optional_text(80),
                hint="What is sold: what referred people buy.",
                maxlength=80,
            ),
            Setting(
                "product_url",
                "Product web address",
                identity.parse_url,
                hint="Where people can see the product, https://…",
                maxlength=500,
            ),
            Setting(
                "accent_color",
                "Accent colour",
                identity.parse_colour,
                hint="Links and buttons, as #rrggbb (buttons have white text); empty: the default.",
                maxlength=7,
            ),
        ),
    ),
    "tiers": (
        "Tiers and rates",
        (
            Setting(
                "max_tier_level",
                "Max tier",
                _whole(1, MAX_TIER_LEVEL),
                "number",
                hint="How many levels of upline earn on a sale (1 to 10).",
            ),
            Setting(
                "is_mlm_enabled",
                "Multi-level commissions",
                _flag,
                "flag",
                hint="Off: only the direct referrer earns, at the default rate.",
            ),
            Setting(
                "max_total_tier_rate",
                "Cap on the tiers' rates together (%)",
                percent,
                "percent",
                hint="The tier editor refuses active tiers paying more than this on one sale.",
            ),
            Setting(
                "default_commission_rate",
                "Default rate (%)",
                percent,
                "percent",
                hint="Tier 1's rate when it has no tier row, and every rate when MLM is off.",
            ),
        ),
    ),
    "commissions": (
        "Commissions",
        (
            Setting(
                "commission_base",
                "Commission base",
                _choice(COMMISSION_BASES),
                "choice",
                choices=tuple(sorted(COMMISSION_BASES)),
            ),
            Setting(
                "max_recurring_payments",
                "Recurring limit",
                _optional_whole,
                "number",
                hint="How many payments of one subscription earn; empty: all of them.",
            ),
            Setting(
                "attribution_window_days", "Attribution window (days)", _whole(1, 365), "number"
            ),
            Setting(
                "allow_direct_signups",
                "Direct sign-ups",
                _flag,
                "flag",
                hint="People may join without a referral link.",
            ),
            Setting(
                "currency", "Currency", _currency, hint="Can change only before the first sale."
            ),
        ),
    ),
    "holds": (
        "Refunds and holds",
        (
            Setting("refund_window_days", "Refund window (days)", _whole(0, 365), "number"),
            Setting(
                "hold_days",
                "Hold (days)",
                _whole(0, 365),
                "number",
                hint="Never shorter than the refund window.",
            ),
        ),
    ),
    "payouts": (
        "Payouts",
        (
            Setting("min_payout_amount", "Minimum payout", _amount, "amount"),
            Setting(
                "payout_frequency",
                "Payout frequency",
                _choice(PAYOUT_FREQUENCIES),
                "choice",
                choices=("daily", "weekly", "monthly"),
            ),
            Setting("payouts_need_approval", "Payouts need approval", _flag, "flag"),
            Setting(
                "dual_approval_above",
                "Dual approval above",
                _optional_amount,
                "amount",
                hint="Payouts above this need two admins; empty: never.",
            ),
        ),
    ),
}

# Rows the backfill would add once the max tier is :level: every (buyer, ancestor) pair up
# to that depth, walked through tier-1 rows, that has no referral row yet. One query.
_BACKFILL_COUNT = text(
    """
    WITH RECURSIVE chain AS (
        SELECT referred_user_id AS user_id, referrer_id, 1 AS tier
        FROM referrals WHERE tier = 1
        UNION ALL
        SELECT c.user_id, up.referrer_id, c.tier + 1
        FROM chain c JOIN referrals up ON up.referred_user_id = c.referrer_id AND up.tier = 1
        WHERE c.tier < :level
    )
    SELECT count(*) FROM chain c
    WHERE NOT EXISTS (
        SELECT 1 FROM referrals r WHERE r.referred_user_id = c.user_id AND r.tier = c.tier
    )
    """
)


def stored(value: object, kind: str) -> str:
    """A setting as the form shows it (rates as percentages, without trailing zeros)."""
    if value is None:
        return ""
    if kind == "percent":
        return percent_text(value)
    if kind == "amount":
        return plain(value)
    return str(value)


def parse_section(section: str, form: dict[str, str]) -> dict[str, object]:
    """The section's values from the submitted form; ``SettingsRefused`` lists every bad
    field (and the rules that span fields). Changes nothing."""
    errors, values = {}, {}
    for setting in SECTIONS[section][1]:
        try:
            values[setting.name] = setting.parse(form.get(setting.name, ""))
        except ValueError as problem:
            errors[setting.name] = str(problem)
    if section == "holds" and not errors and values["hold_days"] < values["refund_window_days"]:
        errors["hold_days"] = "The hold must cover the refund window, so refunds land first."
    if errors:
        raise SettingsRefused(errors)
    return values


def changes(values: dict[str, object]) -> dict[str, tuple[object, object]]:
    """Each setting whose value differs from the stored one: name -> (old, new)."""
    settings = get_settings()
    return {
        name: (getattr(settings, name), new)
        for name, new in values.items()
        if getattr(settings, name) != new
    }


def consequences(changed: dict[str, tuple[object, object]]) -> list[str]:
    """What saving these changes would do beyond the settings row, to show before saving.
    Refuses (``SettingsRefused``) a cap or max tier that the active tiers' rates exceed, and
    refuses (``SettingsRefused``) a change of currency once a sale exists: balances and
    commissions are amounts in the program's currency, never converted, so relabelling them
    would silently turn 100 USD owed into 100 EUR owed."""
    settings = get_settings()
    notes = []
    if "currency" in changed and db.session.scalar(select(exists().where(Sale.id.is_not(None)))):
        raise SettingsRefused(
            {
                "currency": f"Sales are recorded in {settings.currency}: balances would be "
                "relabelled, not converted, so the currency can change only before the first sale."
            }
        )
    max_tier = changed.get("max_tier_level", (None, settings.max_tier_level))[1]
    cap = changed.get("max_total_tier_rate", (None, settings.max_total_tier_rate))[1]
    tier_change = {"max_tier_level", "max_total_tier_rate"} & changed.keys()
    if tier_change and (problem := cap_problem(active_rates(max_tier), cap)):
        field = "max_total_tier_rate" if "max_total_tier_rate" in changed else "max_tier_level"
        raise SettingsRefused({field: problem})
    old_max, new_max = changed.get("max_tier_level", (None, None))
    if new_max is not None and new_max > old_max:
        count = db.session.scalar(_BACKFILL_COUNT, {"level": new_max})
        notes.append(
            f"Raising the max tier to {new_max} backfills {count} referral "
            f"row{'s' if count != 1 else ''} (tiers {old_max + 1}-{new_max}), in the background."
        )
    old_mlm, new_mlm = changed.get("is_mlm_enabled", (None, None))
    if old_mlm and new_mlm is False and max_tier > 1:
        notes.append(
            f"Turning MLM off stops tiers 2-{max_tier} on new sales: only direct referrers "
            "earn, at the default rate. Commissions already accrued stay."
        )
    return notes


def save_section(section: str, values: dict[str, object], *, actor_id: str | None) -> dict:
    """Store the section's values, audit the change (``program.settings_changed`` with each
    field's old and new value) and enqueue the referral backfill after commit when the max
    tier rose. Returns the changes (empty: nothing stored, nothing audited). Flushes."""
    # Locked and re-read first: two admins saving at once each audit the value they replaced.
    settings = db.session.execute(
        select(ReferralProgramSettings).with_for_update().execution_options(populate_existing=True)
    ).scalar_one()
    changed = changes(values)
    consequences(changed)  # refuses what must not change
    if not changed:
        return changed
    for name, (_, new) in changed.items():
        setattr(settings, name, new)
    audit.record(
        "program.settings_changed",
        actor_id=actor_id,
        subject_type="settings",
        subject_id=settings.id,
        section=section,
        changes={
            name: {"old": _json(old), "new": _json(new)} for name, (old, new) in changed.items()
        },
    )
    if "max_tier_level" in changed:
        enqueue_backfill_if_raised(*changed["max_tier_level"])
    db.session.flush()
    identity.forget_identity()
    return changed


def _json(value: object) -> object:
    """Decimals as exact strings (JSON numbers would go through float)."""
    return str(value) if isinstance(value, Decimal) else value
