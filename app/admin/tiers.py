"""The MLM tier editor: the tier table with inline edit (HTMX swaps the row; without
JavaScript the page posts and redirects), adding a tier, deactivating and reactivating.
The rules and guardrails are ``app/services/program/tiers.py``."""

from __future__ import annotations

from flask import abort, flash, request, url_for
from flask_login import current_user

from app.admin import bp
from app.extensions import db
from app.htmx import redirect_to, render, wants_fragment
from app.models import MLMTier
from app.services.program import simulator
from app.services.program import tiers as tier_service
from app.services.program.program import get_settings, list_tiers
from app.services.program.rates import is_whole, percent_text
from app.services.program.tiers import TierRefused

PAGE, TABLE, ROW = "admin/tiers.html", "admin/_tiers.html", "admin/_tier_row.html"
SIMULATOR = "admin/_simulator.html"


def _draft_form(tiers: list[MLMTier], max_tier: int) -> dict[str, str]:
    """The simulator's form filled with today's terms: the active tiers' rates."""
    form = {f"rate_{t.level}": percent_text(t.commission_rate) for t in tiers if t.is_active}
    return {"max_tier": str(max_tier), "days": "30", **form}


def _context(**state: object) -> dict[str, object]:
    settings = get_settings()
    tiers = list_tiers()
    return {
        "tiers": tiers,
        "draft": _draft_form(tiers, settings.max_tier_level),
        "draft_errors": {},
        "simulation": None,
        "windows": simulator.WINDOWS,
        "draft_levels": max([settings.max_tier_level, *(t.level for t in tiers)]),
        "settings": settings,
        "percent_text": percent_text,
        "cap": percent_text(settings.max_total_tier_rate),
        "messages": {},
        "errors": {},
        "submitted": {},
        "add_form": {},
        "add_errors": {},
        **state,
    }


@bp.get("/tiers")
def tiers():
    return render(PAGE, PAGE, **_context())


def _tier(tier_id: str) -> MLMTier:
    tier = db.session.get(MLMTier, tier_id)
    if tier is None:
        abort(404)
    return tier


def _row_answer(tier_id: str, notes: list[str] | None, refused: TierRefused | None = None):
    """HTMX: the row again (422 with the refusal). Otherwise the page (PRG), or the page
    with the row's errors (422)."""
    form = request.form.to_dict()
    if refused is not None:
        state = {"errors": {tier_id: refused.errors}, "submitted": {tier_id: form}}
        status = 422
    else:
        saved = [("success", "Saved.")] + [("warning", note) for note in notes or []]
        state, status = {"messages": {tier_id: saved}}, 200
    if wants_fragment():
        return render(ROW, ROW, status=status, tier=_tier(tier_id), **_context(**state))
    if refused is not None:
        return render(PAGE, PAGE, status=422, **_context(**state))
    for kind, text in state["messages"][tier_id]:
        flash(f"Tier {_tier(tier_id).level}: {text}", kind)
    return redirect_to(url_for("admin.tiers"))


@bp.post("/tiers/<tier_id>")
def edit_tier(tier_id: str):
    """A tier's rate and description; refused beyond the cap, warned when deeper pays more."""
    tier = _tier(tier_id)
    try:
        values = tier_service.parse_tier(request.form.to_dict(), with_level=False)
        notes = tier_service.update_tier(tier, values, actor_id=current_user.id)
    except TierRefused as refused:
        db.session.rollback()
        return _row_answer(tier_id, None, refused)
    db.session.commit()
    return _row_answer(tier_id, notes)


@bp.post("/tiers/<tier_id>/<any(deactivate, reactivate):action>")
def toggle_tier(tier_id: str, action: str):
    """Deactivate (no tier pays at that level on new sales) or reactivate (within the cap)."""
    tier = _tier(tier_id)
    try:
        notes = tier_service.set_tier_active(tier, action == "reactivate", actor_id=current_user.id)
    except TierRefused as refused:
        db.session.rollback()
        return _row_answer(tier_id, None, refused)
    db.session.commit()
    return _row_answer(tier_id, notes)


@bp.post("/tiers")
def add_tier():
    """A new active tier at a free level up to the max tier. HTMX: the table again."""
    form = request.form.to_dict()
    try:
        values = tier_service.parse_tier(form, with_level=True)
        tier, notes = tier_service.add_tier(values, actor_id=current_user.id)
    except TierRefused as refused:
        db.session.rollback()
        state = {"add_form": form, "add_errors": refused.errors}
        return render(PAGE, TABLE, status=422, **_context(**state))
    db.session.commit()
    saved = [("success", "Added.")] + [("warning", note) for note in notes]
    if wants_fragment():
        return render(PAGE, TABLE, **_context(messages={tier.id: saved}))
    for kind, text in saved:
        flash(f"Tier {tier.level}: {text}", kind)
    return redirect_to(url_for("admin.tiers"))


@bp.get("/tiers/simulate")
def simulate_tiers():
    """What the last 30/90 days of sales would pay under the draft rates and max tier, beside
    what they paid. Reads only. HTMX: the simulator panel; otherwise the tier page with it."""
    draft = _with_row_edit(request.args.to_dict())
    context = _context(draft=draft)
    context["draft_levels"] = levels = max(context["draft_levels"], _int(draft, "max_tier"))
    try:
        rates, max_tier, days = simulator.parse_draft(draft, levels)
    except TierRefused as refused:
        context["draft_errors"] = refused.errors
        return render(PAGE, SIMULATOR, status=422, **context)
    context["simulation"] = simulator.simulate(rates, max_tier, days)
    return render(PAGE, SIMULATOR, **context)


def _with_row_edit(args: dict[str, str]) -> dict[str, str]:
    """The draft with the rate being typed in a tier's row (``edited_level`` and the row's
    ``commission_rate``, sent with the simulator's form as the admin types), so the
    simulator follows the editor."""
    level, typed = args.pop("edited_level", ""), args.pop("commission_rate", None)
    if typed is not None and is_whole(level) and len(level) <= 2:
        args[f"rate_{int(level)}"] = typed
    return args


def _int(args: dict[str, str], name: str) -> int:
    """A small whole number from the query string, 0 when it is not one (``parse_draft`` then
    says what is wrong)."""
    raw = args.get(name, "")
    return int(raw) if is_whole(raw) and len(raw) <= 2 else 0
