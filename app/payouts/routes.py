from datetime import UTC, datetime

from flask import flash, redirect, session, url_for
from flask_login import current_user, login_required

from app import crypto
from app.extensions import db
from app.htmx import redirect_to, render, render_form, wants_fragment
from app.money import format_money
from app.payouts import bp
from app.payouts.forms import PayeeForm, PayoutRequestForm, StripeAccountForm
from app.security import allow_form_action
from app.services.accounts.visitors import request_ip_hash
from app.services.money.ledger import balances, becoming_available
from app.services.payouts.payout_accounts import (
    FORM,
    PayeeDetailsRejected,
    payee_status,
    save_payee_details,
)
from app.services.payouts.payouts import (
    METHOD_NAMES,
    PayoutRefused,
    history,
    payable_amount,
    ready_methods,
    request_payout,
)
from app.services.payouts.schedule import next_run
from app.services.payouts.stripe_accounts import (
    StripeUnavailable,
    onboarding_link,
    onboarding_origin,
    open_stripe_account,
    refresh_stripe_account,
    stripe_account,
    stripe_status,
)
from app.services.program.program import get_settings

PAGE, PAYEE = "payouts/index.html", "payouts/_payee.html"
STRIPE = "payouts/_stripe_account.html"
# How many times this browser session's account opening got an answer from Stripe that
# Stripe keeps for its idempotency key (a 500): the next try needs the next key.
STRIPE_ATTEMPT = "stripe_account_attempt"
NO_STRIPE_ACCOUNT = "You have no Stripe account yet: set up payouts with Stripe first."
STRIPE_SAYS = {
    "ready": "Your Stripe account is ready to receive payouts.",
    "setup": "Your Stripe account is not ready yet. {message} Continue the setup to finish it.",
    "restricted": "Stripe cannot pay your account: {message}",
}
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
        "schedule": becoming_available(current_user.id),
        "settings": get_settings(),
        "payee": payee_status(current_user.id),
        "can_save_payee": crypto.is_configured(),
        "stripe": stripe_status(current_user.id),
        "stripe_form": StripeAccountForm(formdata=None),
        "payable": payable_amount(current_user.id),
        "payouts": history(current_user.id),
        "method_names": METHOD_NAMES,
        "request_form": _request_form(formdata=None),
        "next_scheduled": next_run(datetime.now(UTC)),
        **forms,
    }


@bp.after_request
def stripe_form_action(response):
    """The Stripe form's answer (without JavaScript) redirects to Stripe's onboarding page."""
    return allow_form_action(response, onboarding_origin())


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


def _stripe_section(form: StripeAccountForm, status: int, message: str | None = None):
    """The Stripe section again (the page without HTMX) with the form's errors."""
    if message:
        form.form_errors.append(message)
    context = _context(stripe_form=form, form=PayeeForm(formdata=None))
    return render(PAGE, STRIPE, status=status, **context)


@bp.post("/payouts/stripe")
@login_required
def stripe_start():
    """Open the user's Stripe Express account (or take the existing one) and send them to a
    new Stripe onboarding link (``HX-Redirect`` for HTMX). 422 for a bad country, 503 when
    Stripe fails: nothing is kept then, and a retry starts afresh."""
    form = StripeAccountForm()
    if not form.validate_on_submit():
        return _stripe_section(form, 422)
    attempt = session.get(STRIPE_ATTEMPT, 0)
    try:
        account = open_stripe_account(
            current_user, form.country.data, attempt=attempt, ip_hash=request_ip_hash()
        )
    except StripeUnavailable as problem:
        db.session.rollback()
        if problem.key_spent:
            session[STRIPE_ATTEMPT] = attempt + 1
        return _stripe_section(form, 503, str(problem))
    db.session.commit()  # the account exists at Stripe: keep it, whatever the link does
    try:
        return redirect_to(onboarding_link(account))
    except StripeUnavailable as problem:
        return _stripe_section(form, 503, str(problem))


@bp.get("/payouts/stripe/refresh")
@login_required
def stripe_refresh():
    """Where Stripe sends the user when their onboarding link expired (and "Continue setup"):
    a new link for the logged-in user's own account."""
    account = stripe_account(current_user.id)
    if account is None:
        flash(NO_STRIPE_ACCOUNT, "error")
        return redirect(url_for("payouts.index"))
    try:
        return redirect(onboarding_link(account))
    except StripeUnavailable as problem:
        flash(str(problem), "error")
        return redirect(url_for("payouts.index"))


@bp.get("/payouts/stripe/return")
@login_required
def stripe_return():
    """Where Stripe sends the user after onboarding: the logged-in user's own account is
    asked for at Stripe (the browser's word is not taken), its readiness stored, and the
    result flashed on the payouts page."""
    account = stripe_account(current_user.id)
    if account is None:
        flash(NO_STRIPE_ACCOUNT, "error")
        return redirect(url_for("payouts.index"))
    try:
        refresh_stripe_account(account)
    except StripeUnavailable as problem:
        db.session.rollback()
        flash(str(problem), "error")
        return redirect(url_for("payouts.index"))
    db.session.commit()
    status = stripe_status(current_user.id)
    category = "success" if status.state == "ready" else "error"
    flash(STRIPE_SAYS[status.state].format(message=status.message), category)
    return redirect(url_for("payouts.index"))


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
