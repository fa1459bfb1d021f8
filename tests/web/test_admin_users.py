"""An admin's page about one user: who may see it, what it shows, suspension (which stops
accrual and payout requests) and flag decisions, with and without HTMX, and bad input."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import AuditEntry, Commission, ReferralFlag, User
from app.services.accounts.moderation import SuspensionRefused, set_suspended
from app.services.payouts.payouts import PayoutRefused, request_payout
from tests.conftest import csrf_token, log_in
from tests.factories import make_chain, make_payout, make_sale, make_user

pytestmark = pytest.mark.usefixtures("ledger_holds")

HX = {"HX-Request": "true"}


def _post(client, path: str, headers=None, **data):
    token = csrf_token(client, "/admin/users")
    return client.post(path, data={"csrf_token": token, **data}, headers=headers or {})


def _suspended(user_id: str) -> bool:
    db.session.rollback()
    return db.session.get(User, user_id).is_suspended


def _audited(action: str) -> list[AuditEntry]:
    db.session.rollback()
    return list(db.session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def _flag(buyer: User, referrer: User) -> ReferralFlag:
    flag = ReferralFlag(referred_user_id=buyer.id, referrer_id=referrer.id, reason="same_ip")
    db.session.add(flag)
    db.session.commit()
    return flag


def test_every_user_route_is_a_404_for_non_admins(client):
    root, buyer = make_chain(2)
    flag = _flag(buyer, root)
    log_in(client, make_user().email)
    token = csrf_token(client, "/payouts")
    paths = [
        f"/admin/users/{buyer.id}",
        f"/admin/users/{buyer.id}/suspend",
        f"/admin/users/{buyer.id}/reactivate",
        f"/admin/users/{buyer.id}/flags/{flag.id}",
    ]
    for headers in ({}, HX):
        for path in paths:
            data = {"csrf_token": token, "reason": "x", "decision": "cleared"}
            assert client.get(path, headers=headers).status_code == 404, path
            assert client.post(path, data=data, headers=headers).status_code == 404, path
    assert not _suspended(buyer.id)
    assert db.session.get(ReferralFlag, flag.id).status == "open"


def test_anonymous_visitors_are_sent_to_log_in(client):
    user = make_user()
    answer = client.get(f"/admin/users/{user.id}")
    assert answer.status_code == 302 and "/login" in answer.headers["Location"]
    answer = client.get(f"/admin/users/{user.id}", headers=HX)
    assert "/login" in answer.headers["HX-Redirect"] and answer.get_data() == b""


def test_an_unknown_user_or_a_flag_of_someone_else_is_a_404(client, admin):
    root, buyer = make_chain(2)
    stranger = make_user()
    flag = _flag(buyer, root)
    assert client.get("/admin/users/nope").status_code == 404
    assert _post(client, "/admin/users/nope/suspend", reason="x").status_code == 404
    answer = _post(client, f"/admin/users/{stranger.id}/flags/{flag.id}", decision="cleared")
    assert answer.status_code == 404
    assert db.session.get(ReferralFlag, flag.id).status == "open"


def test_posts_need_the_csrf_token(client, admin):
    root, buyer = make_chain(2)
    flag = _flag(buyer, root)
    for headers in ({}, HX):
        path = f"/admin/users/{buyer.id}/suspend"
        assert client.post(path, data={"reason": "x"}, headers=headers).status_code == 400
        path = f"/admin/users/{buyer.id}/flags/{flag.id}"
        assert client.post(path, data={"decision": "confirmed"}, headers=headers).status_code == 400
    assert not _suspended(buyer.id) and _audited("user.suspended") == []
    assert db.session.get(ReferralFlag, flag.id).status == "open"


def test_the_search_links_to_the_profile_which_shows_the_user(client, admin):
    top, middle, user, child = make_chain(4)
    make_sale(child, "2000.00", days_ago=40)
    payout = make_payout(user, "100.00")
    flag = _flag(child, user)
    found = client.get(f"/admin/users?q={user.username}", headers=HX).get_data(as_text=True)
    assert f'href="/admin/users/{user.id}"' in found
    page = client.get(f"/admin/users/{user.id}").get_data(as_text=True)
    upline = page.split('id="upline"')[1].split("</p>")[0]
    assert upline.index(middle.username) < upline.index(top.username)  # nearest first
    assert f'href="/admin/users/{middle.id}" data-tier="1"' in upline
    assert f'href="/admin/users/{top.id}" data-tier="2"' in upline
    assert f'href="/admin/users/{user.id}/network"' in page
    commission = db.session.scalars(select(Commission).where(Commission.user_id == user.id)).one()
    assert f'data-commission="{commission.id}"' in page and child.username in page
    assert f'data-payout="{payout.id}"' in page
    assert f'data-flag="{flag.id}"' in page
    # 10% of 2000 at tier 1, less the 100.00 payout: 100.00 available.
    assert 'data-stat="available">100.00 USD' in page
    assert 'data-audit="payout.requested"' not in page  # about the payout, not the user


def test_suspension_stops_accrual_and_payout_requests_until_reactivated(client, admin):
    root, buyer = make_chain(2)
    make_sale(buyer, "1000.00", days_ago=40)  # earned before: it stays
    answer = _post(client, f"/admin/users/{root.id}/suspend", reason="chargebacks")
    assert answer.status_code == 302 and answer.headers["Location"] == f"/admin/users/{root.id}"
    assert _suspended(root.id)
    (entry,) = _audited("user.suspended")
    assert (entry.actor_id, entry.subject_id, entry.details) == (
        admin.id,
        root.id,
        {"reason": "chargebacks"},
    )
    page = client.get(f"/admin/users/{root.id}").get_data(as_text=True)
    assert "Status: suspended" in page and 'data-audit="user.suspended"' in page
    new_sale = make_sale(buyer, "1000.00", days_ago=35)
    assert db.session.scalar(select(Commission.id).where(Commission.sale_id == new_sale)) is None
    with pytest.raises(PayoutRefused, match="suspended"):
        make_payout(db.session.get(User, root.id), "50.00")
    db.session.rollback()
    answer = _post(client, f"/admin/users/{root.id}/reactivate", reason="resolved", headers=HX)
    assert answer.status_code == 200 and "Status: active" in answer.get_data(as_text=True)
    assert not _suspended(root.id) and len(_audited("user.reactivated")) == 1
    make_sale(buyer, "1000.00", days_ago=35)
    earned = select(func.sum(Commission.amount)).where(Commission.user_id == root.id)
    assert db.session.scalar(earned) == Decimal("200.00")
    assert make_payout(db.session.get(User, root.id), "200.00").status == "pending"


def test_suspend_with_htmx_swaps_the_status_section(client, admin):
    user = make_user()
    answer = _post(client, f"/admin/users/{user.id}/suspend", headers=HX, reason="spam")
    body = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert body.strip().startswith('<section class="card" id="user-status"')
    assert "HX-Request" in answer.headers["Vary"] and "Suspended: no new commissions" in body
    assert "Reactivate" in body and _suspended(user.id)


@pytest.mark.parametrize(
    ("reason", "message"),
    [("", "Give a reason"), ("   ", "Give a reason"), ("x" * 501, "500 characters")],
)
def test_bad_reasons_are_refused_with_422_and_nothing_changes(client, admin, reason, message):
    user = make_user()
    for headers in ({}, HX):
        answer = _post(client, f"/admin/users/{user.id}/suspend", headers=headers, reason=reason)
        assert answer.status_code == 422 and message in answer.get_data(as_text=True)
    assert not _suspended(user.id) and _audited("user.suspended") == []


def test_suspending_twice_or_oneself_is_refused(client, admin):
    user = make_user()
    _post(client, f"/admin/users/{user.id}/suspend", reason="spam")
    answer = _post(client, f"/admin/users/{user.id}/suspend", headers=HX, reason="again")
    assert answer.status_code == 422 and "suspended already" in answer.get_data(as_text=True)
    answer = _post(client, f"/admin/users/{admin.id}/suspend", reason="oops")
    assert answer.status_code == 422 and "your own account" in answer.get_data(as_text=True)
    assert not _suspended(admin.id) and len(_audited("user.suspended")) == 1


def test_concurrent_suspensions_change_and_audit_once(app):
    user = make_user()
    admin_ids = [make_user(is_admin=True).id for _ in range(4)]
    start = threading.Barrier(len(admin_ids))

    def one(admin_id: str) -> str:
        with app.app_context():
            target, admin = db.session.get(User, user.id), db.session.get(User, admin_id)
            db.session.commit()
            start.wait()
            try:
                set_suspended(target, True, admin, "abuse")
                db.session.commit()
                return "suspended"
            except SuspensionRefused:
                db.session.rollback()
                return "refused"
            finally:
                db.session.remove()

    with ThreadPoolExecutor(max_workers=len(admin_ids)) as pool:
        answers = sorted(pool.map(one, admin_ids))
    assert answers == ["refused"] * 3 + ["suspended"]
    assert _suspended(user.id) and len(_audited("user.suspended")) == 1


def test_clearing_a_flag_from_the_profile_releases_held_commissions(client, admin):
    root, buyer = make_chain(2)
    flag = _flag(buyer, root)
    make_sale(buyer, "100.00", days_ago=40)
    path = f"/admin/users/{root.id}/flags/{flag.id}"
    answer = _post(client, path, headers=HX, decision="cleared")
    body = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert body.strip().startswith('<section class="card" id="user-flags"')
    assert "Flag cleared." in body
    db.session.rollback()
    assert db.session.scalars(select(Commission.status)).one() == "pending"
    assert len(_audited("flag.cleared")) == 1
    answer = _post(client, path, decision="confirmed")
    assert answer.status_code == 422 and "already cleared" in answer.get_data(as_text=True)
    answer = _post(client, path, headers=HX, decision="maybe")
    assert answer.status_code == 422 and "Choose clear or confirm." in answer.get_data(as_text=True)
    assert _audited("flag.confirmed") == []


def test_confirming_a_flag_without_javascript_redirects_back(client, admin):
    root, buyer = make_chain(2)
    flag = _flag(buyer, root)
    make_sale(buyer, "100.00", days_ago=40)
    answer = _post(client, f"/admin/users/{buyer.id}/flags/{flag.id}", decision="confirmed")
    assert answer.status_code == 302 and answer.headers["Location"] == f"/admin/users/{buyer.id}"
    db.session.rollback()
    assert db.session.scalars(select(Commission.status)).one() == "cancelled"
    assert "Flag confirmed." in client.get(f"/admin/users/{buyer.id}").get_data(as_text=True)


def test_a_request_that_loaded_the_user_before_the_suspension_is_refused(app):
    root, buyer = make_chain(2)
    make_sale(buyer, "1000.00", days_ago=40)
    make_payout(root, "50.00", complete=True)  # the payout account exists
    stale = db.session.get(User, root.id)  # loaded, as a request loads its user
    assert not stale.is_suspended
    with app.app_context():  # another admin's request, committed meanwhile
        set_suspended(
            db.session.get(User, root.id),
            True,
            db.session.get(User, make_user(is_admin=True).id),
            "chargebacks",
        )
        db.session.commit()
        db.session.remove()
    with pytest.raises(PayoutRefused, match="suspended"):
        request_payout(stale, Decimal("50.00"), "stripe")
    db.session.rollback()
