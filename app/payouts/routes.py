from flask import flash, redirect, url_for
from flask_login import current_user, login_required

from app import crypto
from app.extensions import db
from app.htmx import render, render_form, wants_fragment
from app.payouts import bp
from app.payouts.forms import PayeeForm
from app.services.ledger import balances
from app.services.payout_accounts import (
    FORM,
    PayeeDetailsRejected,
    payee_status,
    save_payee_details,
)
from app.services.program import get_settings
from app.services.visitors import request_ip_hash

PAGE, PAYEE = "payouts/index.html", "payouts/_payee.html"
NO_KEY = (
    "Payee details cannot be saved right now (the server has no encryption key). "
    "Please tell the program's admin."
)


def _context() -> dict[str, object]:
    return {
        "balances": balances(current_user.id),
        "settings": get_settings(),
        "payee": payee_status(current_user.id),
        "can_save_payee": crypto.is_configured(),
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
