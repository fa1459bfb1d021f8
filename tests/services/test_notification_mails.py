"""Notification mails over real SMTP on loopback: new referrals (tier 1, daily), commissions
(daily digest), payout sent / failed, flag decided; each once, also when jobs run twice,
and none for a category the user turned off."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from app.extensions import db
from app.jobs import digests
from app.jobs.mail import send_mail_job
from app.jobs.payouts import send_payout_job
from app.models import InvalidTransition, MailDigest, MailNotice, OutboxMail, ReferralFlag
from app.services.mail.digests import send_digest_batch, today
from app.services.mail.preferences import opt_out
from app.services.money.fraud import resolve_flag
from app.services.payouts.payouts import fail_payout, start_processing
from app.services.payouts.transfers import TransientStripeError
from tests.factories import make_chain, make_payout, make_sale, make_user
from tests.payout_sending import stripe_payout
from tests.signing import run_jobs


def _digests(app, monkeypatch=None, days_later: int = 0) -> dict[str, int]:
    """The daily job (on a later day when asked), then the mails it queued, each twice."""
    if days_later:
        monkeypatch.setattr(digests, "today", lambda: today() + timedelta(days=days_later))
    counts = digests.send_digests_job()
    assert digests.send_digests_job() == {"commission_earned": 0, "referral_joined": 0}
    run_jobs(app)
    run_jobs(app)
    return counts


def _parts(message) -> tuple[str, str]:
    return (
        message.get_body(("plain",)).get_content(),
        message.get_body(("html",)).get_content(),
    )


def _assert_unsubscribable(message) -> None:
    link = message["List-Unsubscribe"].strip("<>")
    assert link.startswith("http://localhost/mail/unsubscribe/")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text, html = _parts(message)
    assert link in text
    assert link in html
    assert "Referral program" in text
    assert "Referral program" in html


def test_new_referrals_reach_only_the_direct_referrer_once_a_day(app, smtp_server, monkeypatch):
    grand, parent = make_chain(2)
    first, second = make_user(referrer=parent), make_user(referrer=parent)
    make_user(referrer=first)  # tier 1 of first, tier 2 of parent, tier 3 of grand

    assert _digests(app) == {"commission_earned": 0, "referral_joined": 3}
    [to_parent] = smtp_server.to(parent.email)
    assert to_parent["Subject"] == "2 people joined your Referral program network"
    text, html = _parts(to_parent)
    for username in (first.username, second.username):
        assert username in text
        assert username in html
    _assert_unsubscribable(to_parent)
    [to_grand] = smtp_server.to(grand.email)
    assert to_grand["Subject"] == f"{parent.username} joined your Referral program network"
    assert first.username not in _parts(to_grand)[0]  # tier 2 and deeper: never told
    assert len(smtp_server.to(first.email)) == 1

    late = make_user(referrer=parent)
    _digests(app)  # the same day: parent's digest of the day is sent already
    assert len(smtp_server.to(parent.email)) == 1
    _digests(app, monkeypatch, days_later=1)
    [_, next_day] = smtp_server.to(parent.email)
    assert late.username in _parts(next_day)[0]
    assert first.username not in _parts(next_day)[0]
    assert len(smtp_server.messages) == 4
    assert db.session.scalar(select(func.count()).select_from(MailNotice)) == 0


def test_the_commission_digest_lists_what_accrued_since_the_last_one(app, smtp_server, monkeypatch):
    root, parent, buyer = make_chain(3)
    _digests(app)  # the sign-ups' digests
    smtp_server.messages.clear()

    make_sale(buyer, "100.00", days_ago=3)
    make_sale(buyer, "20.00", days_ago=1)
    assert _digests(app)["commission_earned"] == 2
    [to_parent] = smtp_server.to(parent.email)
    assert to_parent["Subject"] == "You earned 12.00 USD in Referral program"  # 10 % of 120
    text, html = _parts(to_parent)
    assert "2 new commissions since your last summary, 12.00 USD in all" in text
    assert "10.00 USD, tier 1, sale of" in text
    assert "2.00 USD, tier 1, sale of" in text
    assert "in hold until" in text
    assert "12.00 USD" in html
    _assert_unsubscribable(to_parent)
    [to_root] = smtp_server.to(root.email)
    assert "tier 2" in _parts(to_root)[0]
    assert smtp_server.to(buyer.email) == []  # earned nothing: no digest

    _digests(app, monkeypatch, days_later=1)  # nothing new: nothing sent
    assert len(smtp_server.messages) == 2
    make_sale(buyer, "50.00")
    _digests(app, monkeypatch, days_later=2)
    [_, later] = smtp_server.to(parent.email)
    assert later["Subject"] == "You earned 5.00 USD in Referral program"
    assert "10.00 USD" not in _parts(later)[0]


def test_two_digest_runs_at_once_send_one_mail(app, smtp_server):
    parent = make_user()
    make_user(referrer=parent)
    day = today()
    assert send_digest_batch("referral_joined", day) == 1
    db.session.commit()
    assert send_digest_batch("referral_joined", day) == 0  # the day is taken
    db.session.commit()
    run_jobs(app)
    assert len(smtp_server.to(parent.email)) == 1
    assert db.session.scalar(select(MailDigest.mail_id)) is not None


def test_payout_sent_arrives_once_even_after_a_refused_attempt(app, smtp_server):
    user = make_user()
    make_sale(make_user(referrer=user), "500.00", days_ago=60)
    smtp_server.refuse = 1
    payout = make_payout(user, complete=True)
    run_jobs(app)
    assert smtp_server.to(user.email) == []
    mail = db.session.scalar(select(OutboxMail).where(OutboxMail.kind == "payout_sent"))
    assert mail.status == "failed"
    db.session.execute(
        update(OutboxMail)
        .where(OutboxMail.id == mail.id)
        .values(next_attempt_at=func.now() - timedelta(seconds=1))
    )
    db.session.commit()
    assert send_mail_job(mail.id) == "sent"
    assert send_mail_job(mail.id) == "nothing"
    run_jobs(app)

    [message] = smtp_server.to(user.email)
    assert message["Subject"] == "Your Referral program payout of 50.00 USD is sent"
    text, html = _parts(message)
    assert f"reference tr_{payout.id}" in text
    assert f"/payouts/{payout.id}" in html
    _assert_unsubscribable(message)


def test_a_stripe_payout_retried_after_no_answer_mails_once(app, smtp_server, fake_stripe):
    payout = stripe_payout(fake_stripe)
    fake_stripe.faults.inject("timeout_after_success")
    with pytest.raises(TransientStripeError):
        send_payout_job(payout.id)
    assert send_payout_job(payout.id) == "completed"
    assert send_payout_job(payout.id) == "nothing"
    run_jobs(app)
    run_jobs(app)
    [message] = smtp_server.to(payout.user.email)
    assert message["Subject"] == "Your Referral program payout of 60.00 USD is sent"


def test_a_stripe_payout_refused_mails_its_failure_once(app, smtp_server, fake_stripe):
    payout = stripe_payout(fake_stripe)
    fake_stripe.faults.inject("account_restricted")
    assert send_payout_job(payout.id) == "failed"
    assert send_payout_job(payout.id) == "nothing"
    run_jobs(app)
    [message] = smtp_server.to(payout.user.email)
    assert "Stripe refused the account: " in _parts(message)[0]


def test_payout_failed_arrives_once(app, smtp_server):
    user = make_user()
    make_sale(make_user(referrer=user), "500.00", days_ago=60)
    payout = make_payout(user)
    start_processing(payout)
    fail_payout(payout, "The bank refused the account number.")
    db.session.commit()
    with pytest.raises(InvalidTransition):
        fail_payout(payout, "Again")
    db.session.rollback()
    run_jobs(app)
    run_jobs(app)

    [message] = smtp_server.to(user.email)
    assert message["Subject"] == "Your Referral program payout of 50.00 USD failed"
    text, html = _parts(message)
    assert "The bank refused the account number." in text
    assert "The money is back in your balance" in html
    _assert_unsubscribable(message)


@pytest.mark.parametrize(
    ("decision", "meaning"),
    [
        ("cleared", "(10.00 USD) is released"),
        ("confirmed", "(10.00 USD) is cancelled and will not be paid"),
    ],
)
def test_a_flag_decision_tells_each_earner_what_it_means(app, smtp_server, decision, meaning):
    root, parent, buyer = make_chain(3)
    flag = ReferralFlag(referred_user_id=buyer.id, referrer_id=parent.id, reason="same_ip")
    db.session.add(flag)
    db.session.commit()
    make_sale(buyer, "100.00")  # held: 10.00 for parent, 5.00 for root
    resolve_flag(flag, decision, make_user(is_admin=True))
    db.session.commit()
    run_jobs(app)
    run_jobs(app)

    [to_parent] = smtp_server.to(parent.email)
    assert to_parent["Subject"] == f"Review {decision}: {buyer.username} in Referral program"
    text, html = _parts(to_parent)
    assert f"Your 1 held commission {meaning}" in text
    assert meaning in html
    _assert_unsubscribable(to_parent)
    [to_root] = smtp_server.to(root.email)
    assert "(5.00 USD)" in _parts(to_root)[0]
    assert smtp_server.to(buyer.email) == []


def test_the_flag_decisions_html_part_escapes_the_buyers_name(app, smtp_server):
    # The sign-up form allows no markup in a username, but the database does (a CLI or
    # import): the HTML part must escape it wherever it is written.
    parent = make_user()
    buyer = make_user(referrer=parent, username="x<i>y</i>")
    flag = ReferralFlag(referred_user_id=buyer.id, referrer_id=parent.id, reason="same_ip")
    db.session.add(flag)
    db.session.commit()
    resolve_flag(flag, "confirmed", make_user(is_admin=True))
    db.session.commit()
    run_jobs(app)

    [message] = smtp_server.to(parent.email)
    text, html = _parts(message)
    assert "Later purchases by x<i>y</i> earn no commission." in text
    assert "<i>" not in html
    assert "Later purchases by x&lt;i&gt;y&lt;/i&gt; earn no commission." in html


def test_opted_out_categories_queue_nothing(app, smtp_server):
    parent = make_user()
    for category in ("network", "earnings", "payouts", "flags"):
        opt_out(parent, category, None, via="link")
    db.session.commit()
    buyer = make_user(referrer=parent)
    flag = ReferralFlag(referred_user_id=buyer.id, referrer_id=parent.id, reason="same_ip")
    db.session.add(flag)
    db.session.commit()
    make_sale(buyer, "500.00", days_ago=60)
    resolve_flag(flag, "cleared", make_user(is_admin=True))
    db.session.commit()
    make_payout(parent, complete=True)
    digests.send_digests_job()
    run_jobs(app)

    assert smtp_server.to(parent.email) == []
    queued = select(func.count()).select_from(OutboxMail).where(OutboxMail.user_id == parent.id)
    assert db.session.scalar(queued) == 0
    # Dropped, not kept: turning the category on again brings no backlog.
    assert db.session.scalar(select(func.count()).select_from(MailNotice)) == 0
