from flask import abort, make_response, render_template

from app.devmail import bp
from app.extensions import db
from app.models import OutboxMail
from app.services.mail.outbox import recent_mails

# The HTML part alone, framed by /dev/mail/<id> only: no script, no request anywhere (a
# mail's remote images stay unloaded), its inline styles allowed.
HTML_PART_POLICY = (
    "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'"
)


def _mail_or_404(mail_id: str) -> OutboxMail:
    mail = db.session.get(OutboxMail, mail_id)
    if mail is None:
        abort(404)
    return mail


@bp.get("")
def index():
    return render_template("devmail/index.html", mails=recent_mails())


@bp.get("/<mail_id>")
def show(mail_id: str):
    return render_template("devmail/mail.html", mail=_mail_or_404(mail_id))


@bp.get("/<mail_id>/html")
def html_part(mail_id: str):
    response = make_response(_mail_or_404(mail_id).body_html)
    response.headers["Content-Security-Policy"] = HTML_PART_POLICY
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response
