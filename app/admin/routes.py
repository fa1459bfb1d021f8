from datetime import UTC, datetime

from flask import abort, flash, render_template, request, url_for
from flask_login import current_user

from app.admin import bp
from app.admin.forms import AttributeForm, FlagDecisionForm, SaleForm
from app.extensions import db
from app.htmx import redirect_to, render, render_form, wants_fragment
from app.jobs.webhooks import request_drain
from app.models import ReferralFlag, User, WebhookEvent
from app.models.base import new_id
from app.services.accounts.directory import find_user, find_users
from app.services.money.fraud import FlagAlreadyResolved, open_flags, resolve_flag
from app.services.money.sale_entry import attribute, record_manual_sale
from app.services.money.sales import find_unattributed, recent_sales
from app.services.money.webhooks import (
    MAX_ATTEMPTS,
    PARKED_LISTED,
    dismiss_parked_event,
    parked_events,
    retry_parked_event,
)
from app.services.network.downline import admin_scope
from app.services.ops.backups import last_runs
from app.services.ops.health import mail_backlog, readiness_checks, webhook_backlog
from app.services.program.program import get_settings
from app.tree.views import TreeLinks, show_search, show_tree


@bp.get("/")
def index():
    return render_template("admin/index.html")


@bp.get("/users")
def users():
    query = request.args.get("q", "")
    return render("admin/users.html", "admin/_users.html", users=find_users(query), query=query)


def _user_links(user_id: str) -> TreeLinks:
    user = db.session.get(User, user_id)
    if user is None:
        abort(404)
    return TreeLinks(
        "admin.user_network",
        "admin.user_network_search",
        f"{user.username}'s network",
        {"user_id": user.id},
    )


@bp.get("/users/<user_id>/network")
def user_network(user_id: str):
    links = _user_links(user_id)
    return show_tree(admin_scope(links.args["user_id"]), links)


@bp.get("/users/<user_id>/network/search")
def user_network_search(user_id: str):
    links = _user_links(user_id)
    return show_search(admin_scope(links.args["user_id"]), links)


@bp.route("/sales/new", methods=["GET", "POST"])
def new_sale():
    form = SaleForm()
    if request.method == "GET":
        form.token.data = new_id()
        form.currency.data = get_settings().currency
        form.occurred_on.data = datetime.now(UTC).date()
    if form.is_submitted():
        valid = form.validate()
        # The buyer is looked up whatever else is wrong: every error in one answer.
        buyer = None if form.buyer.errors else find_user(form.buyer.data)
        if buyer is None and not form.buyer.errors:
            form.buyer.errors.append("No user has this username or email.")
        if valid and buyer is not None:
            sale_id = record_manual_sale(
                current_user,
                buyer,
                form.amount.data,
                form.currency.data,
                form.occurred_on.data,
                form.token.data,
                form.note.data or None,
            )
            db.session.commit()
            if sale_id is None:
                flash("This sale was already recorded; nothing was changed.", "info")
            else:
                flash(f"Sale recorded for {buyer.username}; commissions accrue shortly.", "success")
            return redirect_to(url_for("admin.sales"))
    return render_form("admin/new_sale.html", "admin/_sale_form.html", form)


@bp.get("/sales")
def sales():
    return render_template(
        "admin/sales.html",
        recent=recent_sales(),
        unattributed=find_unattributed(),
        form=AttributeForm(),
    )


@bp.post("/sales/<sale_id>/attribute")
def attribute_sale(sale_id: str):
    form = AttributeForm()
    buyer = find_user(form.buyer.data or "") if form.validate_on_submit() else None
    if buyer is None:
        flash("Name an existing user by username or email.", "error")
    elif attribute(current_user, sale_id, buyer):
        db.session.commit()
        flash(f"Sale attributed to {buyer.username}; commissions accrue shortly.", "success")
    else:
        flash("That sale is attributed already (or does not exist).", "error")
    return redirect_to(url_for("admin.sales"))


@bp.get("/flags")
def flags():
    return render_template("admin/flags.html", flags=open_flags(), form=FlagDecisionForm())


@bp.post("/flags/<flag_id>")
def decide_flag(flag_id: str):
    form = FlagDecisionForm()
    flag = db.session.get(ReferralFlag, flag_id)
    if flag is None:
        abort(404)
    if not form.validate_on_submit():
        flash("Choose clear or confirm.", "error")
        return redirect_to(url_for("admin.flags"))
    try:
        resolve_flag(flag, form.decision.data, current_user)
    except FlagAlreadyResolved as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        db.session.commit()
        flash(f"Flag {form.decision.data}.", "success")
    return redirect_to(url_for("admin.flags"))


@bp.get("/health")
def health():
    return render_template(
        "admin/health.html",
        checks=readiness_checks(),
        backlog=webhook_backlog(),
        mail=mail_backlog(),
        parked=parked_events(),
        listed=PARKED_LISTED,
        max_attempts=MAX_ATTEMPTS,
        backups=last_runs(),
    )


# (service, message when done): a parked event is retried or dismissed, once.
_PARKED_DECISIONS = {
    "retry": (retry_parked_event, "Retried: back in the queue."),
    "dismiss": (dismiss_parked_event, "Dismissed: it will not be processed."),
}


@bp.post("/webhooks/<int:event_pk>/<any(retry, dismiss):decision>")
def decide_parked_event(event_pk: int, decision: str):
    """Retry or dismiss a parked event; HTMX swaps its row, a plain form goes back to the
    health page."""
    if db.session.get(WebhookEvent, event_pk) is None:
        abort(404)
    decide, done = _PARKED_DECISIONS[decision]
    decided = decide(event_pk, current_user) is not None
    db.session.commit()
    if decided and decision == "retry":
        request_drain()
    message = done if decided else "No longer parked: someone decided already."
    if wants_fragment():
        event = db.session.get(WebhookEvent, event_pk)
        return render_template("admin/_parked_event.html", event=event, outcome=message)
    flash(f"Event {event_pk}: {message}", "success" if decided else "error")
    return redirect_to(url_for("admin.health"))
