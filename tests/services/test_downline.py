"""The downline tree: precomputed counts stay exact, paths and pages are right, depth holds."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import select, text, update

from app.extensions import db
from app.models import BranchEarning, Sale, User
from app.pagination import Cursor
from app.services.accounts.accounts import register_user
from app.services.money.commissions import adjust_for_refunds
from app.services.money.sales import record_refund
from app.services.network.downline import (
    PAGE_SIZE,
    admin_scope,
    affiliate_scope,
    load_nodes,
    open_node,
)
from tests.factories import PASSWORD, cached_hash, make_chain, make_sale, make_user

# The oracle: every (ancestor, depth) pair counted by walking the whole tree.
RECOUNT = text(
    """
    WITH RECURSIVE up (ancestor, depth) AS (
        SELECT referred_by, 1 FROM users WHERE referred_by IS NOT NULL
        UNION ALL
        SELECT u.referred_by, up.depth + 1 FROM up JOIN users u ON u.id = up.ancestor
        WHERE u.referred_by IS NOT NULL
    )
    SELECT ancestor, depth, count(*) FROM up GROUP BY 1, 2 ORDER BY 1, 2
    """
)
STORED = text("SELECT user_id, depth, members FROM downline_counts ORDER BY 1, 2")


def assert_counts_exact() -> None:
    stored = db.session.execute(STORED).all()
    assert stored, "no counts stored"
    assert stored == db.session.execute(RECOUNT).all()


def test_registration_counts_the_new_member_at_every_upline_level():
    chain = make_chain(5)
    make_user(referrer=chain[1])
    assert_counts_exact()
    root = load_nodes(admin_scope(chain[0].id), [chain[0].id])[0]
    assert (root.direct, root.downline) == (1, 5)


def test_counts_stay_exact_under_concurrent_registrations(app, monkeypatch):
    """Two hundred sign-ups from ten threads at once, under uplines that share ancestors."""
    monkeypatch.setattr("app.services.accounts.accounts.hash_password", cached_hash)
    chain = make_chain(4)
    codes = [user.referral_code for user in chain]

    def register(n: int) -> None:
        with app.app_context():
            register_user(
                username=f"rush{n}",
                email=f"rush{n}@example.com",
                password=PASSWORD,
                referral_code=codes[n % len(codes)],
                ip_hash=f"ip-{n}",
                terms_version=1,
            )
            db.session.commit()

    with ThreadPoolExecutor(max_workers=10) as pool:
        list(pool.map(register, range(200)))
    assert_counts_exact()
    top = db.session.execute(
        text("SELECT sum(members) FROM downline_counts WHERE user_id = :id"), {"id": chain[0].id}
    ).scalar_one()
    assert top == 3 + 200


_INSERT_USERS = """
    INSERT INTO users (id, username, email, password_hash, referral_code, referred_by)
    VALUES {}
"""


def _insert_users(rows: list[tuple[str, str | None]]) -> None:
    """One INSERT statement for all ``rows`` (id, referrer id): the trigger runs once."""
    values = ", ".join(
        f"(:id{i}, :id{i}, :email{i}, 'x', :code{i}, :ref{i})" for i in range(len(rows))
    )
    params = {}
    for i, (user_id, referrer_id) in enumerate(rows):
        params |= {
            f"id{i}": user_id,
            f"email{i}": f"{user_id}@example.com",
            f"code{i}": f"M{user_id[-7:].upper():0>7}",
            f"ref{i}": referrer_id,
        }
    db.session.execute(text(_INSERT_USERS.format(values)), params)


def test_one_statement_inserting_many_users_counts_each_of_them():
    """Several users in one INSERT: some under one existing chain, some under another, and a
    chain of three whose members refer each other within the same statement."""
    first, second = make_chain(3), make_chain(2)
    _insert_users(
        [
            ("multi0001", first[2].id),
            ("multi0002", first[2].id),
            ("multi0003", first[0].id),
            ("multi0004", second[1].id),
            ("multi0005", "multi0004"),  # inserted in the same statement as its referrer
            ("multi0006", "multi0005"),
            ("multi0007", None),
        ]
    )
    db.session.commit()
    assert_counts_exact()
    counts = dict(
        db.session.execute(
            text("SELECT depth, members FROM downline_counts WHERE user_id = :id"),
            {"id": second[0].id},
        ).all()
    )
    assert counts == {1: 1, 2: 1, 3: 1, 4: 1}


def test_downline_counts_are_kept_once_per_statement():
    """The trigger is statement-level over the inserted rows (one aggregated upsert per
    statement), not one upsert chain per row."""
    row_level, transition_table = db.session.execute(
        text(
            "SELECT (tgtype & 1) = 1, tgnewtable FROM pg_trigger "
            "WHERE tgname = 'users_downline_counts'"
        )
    ).one()
    assert (row_level, transition_table) == (False, "new_users")


def test_counts_stay_exact_under_concurrent_multi_row_inserts(app):
    """Forty statements of five users each from eight threads, under shared uplines: every
    statement locks the counters in key order, so none deadlocks, and the sums stay exact."""
    chains = [make_chain(3), make_chain(3)]
    referrers = [user.id for chain in chains for user in chain]

    def insert(n: int) -> None:
        with app.app_context():
            _insert_users(
                [(f"bulk{n:03d}{k}", referrers[(n + k) % len(referrers)]) for k in range(5)]
            )
            db.session.commit()

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(insert, range(40)))
    assert_counts_exact()
    assert db.session.scalar(text("SELECT count(*) FROM users WHERE id LIKE 'bulk%'")) == 200


def _branch_earnings(earner: User) -> dict[str, Decimal]:
    rows = db.session.execute(
        select(User.username, BranchEarning.amount)
        .join(User, User.id == BranchEarning.member_id)
        .where(BranchEarning.earner_id == earner.id)
    )
    return {name: amount for name, amount in rows if amount}


def test_branch_earnings_follow_commissions_through_their_changes():
    root, child, grandchild, buyer = make_chain(4)
    sale_id = make_sale(buyer, "300.00")  # tier 3 earns 2.5 %: 7.50
    expected = {name: Decimal("7.5000") for name in (child.username, grandchild.username)}
    assert _branch_earnings(root) == {**expected, buyer.username: Decimal("7.5000")}

    record_refund("manual", _external_id(sale_id), Decimal("100.00"))
    adjust_for_refunds(sale_id)
    db.session.commit()
    assert set(_branch_earnings(root).values()) == {Decimal("5.0000")}

    record_refund("manual", _external_id(sale_id), Decimal("300.00"))
    adjust_for_refunds(sale_id)
    db.session.commit()
    assert _branch_earnings(root) == {}


def _external_id(sale_id: str) -> str:
    return db.session.get(Sale, sale_id).external_id


def _path(scope, node_id: str) -> list[str] | None:
    opened = open_node(scope, node_id)
    return None if opened is None else opened.path


def test_nodes_open_within_the_depth_limit_only():
    chain = make_chain(5)
    stranger = make_user()
    scope = affiliate_scope(chain[0].id)  # max tier 3
    assert _path(scope, chain[3].id) == [user.id for user in chain[:4]]
    assert _path(scope, chain[0].id) == [chain[0].id]
    assert _path(scope, chain[4].id) is None  # tier 4
    assert _path(scope, stranger.id) is None
    assert _path(affiliate_scope(chain[2].id), chain[1].id) is None  # upline, not downline
    assert _path(scope, "x" * 500) is None
    assert len(_path(admin_scope(chain[0].id), chain[4].id)) == 5


def test_children_pages_cover_a_120_child_node_without_gaps_or_repeats():
    parent = make_user()
    children = [make_user(referrer=parent) for _ in range(120)]
    # Half of them share one join time: the id breaks the tie.
    db.session.execute(
        update(User)
        .where(User.id.in_([c.id for c in children[:60]]))
        .values(created_at=datetime(2026, 1, 1, tzinfo=UTC))
    )
    db.session.commit()
    scope = affiliate_scope(parent.id)
    seen, cursor, pages = [], None, 0
    while True:
        page = open_node(scope, parent.id, cursor).children
        seen += [node.id for node in page.nodes]
        pages += 1
        assert len(page.nodes) <= PAGE_SIZE
        if page.next_cursor is None:
            break
        cursor = Cursor.decode(page.next_cursor.encode())
    assert pages == 3
    assert len(seen) == len(set(seen)) == 120
    assert set(seen) == {c.id for c in children}


def test_children_beyond_the_max_tier_are_not_listed():
    chain = make_chain(5)
    scope = affiliate_scope(chain[0].id)
    assert [n.id for n in open_node(scope, chain[2].id).children.nodes] == [chain[3].id]
    assert open_node(scope, chain[3].id).children.nodes == []
    deepest = load_nodes(scope, [c.id for c in chain[:4]])[-1]
    assert (deepest.level, deepest.visible_levels, deepest.is_expandable) == (3, 0, False)
    whole = open_node(admin_scope(chain[0].id), chain[3].id)
    assert [n.id for n in whole.children.nodes] == [chain[4].id]


def test_node_figures_are_relative_to_the_viewer():
    chain = make_chain(5)
    make_user(referrer=chain[1])
    nodes = load_nodes(affiliate_scope(chain[0].id), [c.id for c in chain[:4]])
    assert [(n.level, n.direct, n.downline) for n in nodes] == [
        (0, 1, 4),  # tiers 1-3 below the viewer: chain[1..3] and the extra user
        (1, 2, 3),  # two levels visible below tier 1
        (2, 1, 1),
        (3, 1, 0),  # at the limit: nothing below is visible
    ]
    assert nodes[1].status == "pending"


def test_cursor_refuses_tokens_it_did_not_make():
    for token in ("", "abc", "12", "1.", "x.y", "9" * 40 + ".id", "1." + "a" * 40):
        try:
            Cursor.decode(token)
        except ValueError:
            continue
        raise AssertionError(f"accepted {token!r}")
