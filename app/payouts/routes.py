from flask import flash, redirect, url_for
from flask_login import current_user, login_required

from app import crypto
from app.extensions import db
from app.htmx import redirect_to, render, render_form, wants_fragment
from app.money import format_money
from app.payouts import bp
from app.payouts.forms import PayeeForm, PayoutRequestForm
from app.services.ledger import balances
from app.services.payout_accounts import (
    FORM,
    PayeeDetailsRejected,
    payee_status,
    save_payee_details,
)
from app.services.payouts import (
    METHOD_NAMES,
    PayoutRefused,
    history,
    payable_amount,
    ready_methods,
    request_payout,
)
from app.services.program import get_settings
from app.services.visitors import request_ip_hash

PAGE, PAYEE = "payouts/index.html", "payouts/_payee.html"
REQUEST = "payouts/_request_form.html"
NO_KEY = (
    "Payee details cannot be saved right now (the server has no encryption key). "
    "Please tell the program's admin."
)


def _request_form(**kwargs: object) -> PayoutRequestForm:
    form = PayoutRequestForm(**kwargs)
    form.method.choices = [(m, METHOD_NAMES[m]) for m in ready_methods(current_user.id)]
    return form


def _context(**forms: object) -> dict[str, object]:
    """What the page shows; ``forms`` replaces a section's fresh form (one with errors)."""
    return {
        "balances": balances(current_user.id),
        "settings": get_settings(),
        "payee": payee_status(current_user.id),
        "can_save_payee": crypto.is_configured(),
        "payable": payable_amount(current_user.id),
        "payouts": history(current_user.id),
        "method_names": METHOD_NAMES,
        "request_form": _request_form(formdata=None),
        **forms,
    }


@bp.get("/payouts")
@login_required
def index():
    return render(PAGE, "payouts/_payouts.html", form=PayeeForm(), **_context())


@bp.post("/payouts/payee")
@login_required
def payee():
    """Save the Lemon Squeezy payee details: the section again for HTMX, a redirect to the
    page otherwise; 422 with the messages when something needs fixing."""
    form = PayeeForm()
    if form.validate_on_submit():
        try:
            changed = save_payee_details(
                current_user.id, form.submitted(), ip_hash=request_ip_hash()
            )
        except PayeeDetailsRejected as rejected:
            db.session.rollback()
            for name, message in rejected.errors.items():
                errors = form.form_errors if name == FORM else form[name].errors
                errors[:] = [message]
        except crypto.KeysMissing:
            db.session.rollback()
            form.form_errors.append(NO_KEY)
            return render_form(PAGE, PAYEE, form, status=503, **_context())
        else:
            db.session.commit()
            message = "Your payee details are saved." if changed else "Nothing to change."
            if wants_fragment():
                fresh = PayeeForm(formdata=None)
                return render(PAGE, PAYEE, form=fresh, saved=message, **_context())
            flash(message, "success")
            return redirect(url_for("payouts.index"))
    return render_form(PAGE, PAYEE, form, **_context())


@bp.post("/payouts/request")
@login_required
def submit_request():
    """Request a payout: the whole page again (HTMX: by ``HX-Redirect``) with the new payout
    in the history; 422 with the refusal's message when it cannot be made (nothing changed)."""
    form = _request_form()
    if form.validate_on_submit():
        try:
            payout = request_payout(
                current_user._get_current_object(),
                form.amount.data,
                form.method.data or "",
                ip_hash=request_ip_hash(),
            )
        except PayoutRefused as refused:
            db.session.rollback()
            errors = form[refused.field].errors if refused.field else form.form_errors
            errors[:] = [refused.message]
        else:
            db.session.commit()
            amount = format_money(payout.amount, get_settings().currency)
            flash(f"Payout of {amount} requested.", "success")
            return redirect_to(url_for("payouts.index"))
    return render(
        PAGE, REQUEST, status=422, **_context(request_form=form, form=PayeeForm(formdata=None))
    )
