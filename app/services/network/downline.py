"""The downline tree: who sits below whom, read level by level with size-independent cost.

Every read here is bounded by the page size or by the depth of one path, never by the size
of a subtree: children come from the ``(referred_by, created_at, id)`` index in keyset
pages, counts and branch earnings from the trigger-kept ``downline_counts`` and
``branch_earnings`` tables, and the access check walks up ``referred_by`` from the node.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, INTEGER, VARCHAR

from app.driver_sql import all_rows, for_driver
from app.extensions import db
from app.pagination import Cursor
from app.services.program.program import get_settings

PAGE_SIZE = 50
# "No depth limit" for admins, as a number SQL can compare with: deeper than any network.
UNLIMITED = 32_767


@dataclass(frozen=True)
class TreeScope:
    """Whose tree is shown, and whether the viewer sees all of it (admins) or only down to
    the program's max tier (the affiliate's own tree; read in the same SQL statement)."""

    root_id: str
    is_whole_downline: bool = False


def affiliate_scope(user_id: str) -> TreeScope:
    return TreeScope(user_id)


def admin_scope(root_id: str) -> TreeScope:
    return TreeScope(root_id, is_whole_downline=True)


def depth_limit(scope: TreeScope) -> int:
    """How many levels below the root the scope's viewer may see."""
    return UNLIMITED if scope.is_whole_downline else get_settings().max_tier_level


_FIRST = Cursor(datetime(1, 1, 2, tzinfo=UTC), "")


@dataclass(frozen=True)
class TreeNode:
    id: str
    username: str
    joined_at: datetime
    status: str | None  # the node's own referral status; None for a root with no referrer
    level: int  # 0 for the root, n for the viewer's tier-n referrals
    direct: int
    downline: int  # members below this node that the viewer may see
    earned: Decimal  # the root's commissions from this node's branch
    visible_levels: int  # how many levels below this node the viewer may see

    @property
    def is_expandable(self) -> bool:
        return self.visible_levels > 0 and self.direct > 0

    @property
    def cursor(self) -> Cursor:
        return Cursor(self.joined_at, self.id)


@dataclass(frozen=True)
class ChildrenPage:
    parent_id: str
    level: int  # of the children
    nodes: list[TreeNode]
    next_cursor: Cursor | None


@dataclass(frozen=True)
class OpenedNode:
    path: list[str]  # ids from the root down to the node
    depth_limit: int
    children: ChildrenPage


# The depth the viewer may see: the program's max tier, or everything for admins.
_LIMIT = f"""
lim AS (
    SELECT CASE WHEN :whole THEN {UNLIMITED} ELSE max_tier_level END AS depth
    FROM referral_program_settings
)"""  # noqa: S608 - a constant
# The figures of each node in ``n(id, level, depth_limit)``, each from an index lookup: the
# user, its tier-1 referral, at most max-depth counters and one branch earnings row.
_NODE_FIGURES = """
SELECT n.id, n.level, n.depth_limit, u.username, u.created_at, r.status,
       coalesce(d.direct, 0) AS direct, coalesce(d.downline, 0) AS downline,
       coalesce(b.amount, 0) AS earned
FROM n
JOIN users u ON u.id = n.id
LEFT JOIN referrals r ON r.referred_user_id = n.id AND r.tier = 1
LEFT JOIN LATERAL (
    SELECT sum(c.members) FILTER (WHERE c.depth = 1) AS direct,
           sum(c.members) FILTER (WHERE c.depth <= n.depth_limit - n.level) AS downline
    FROM downline_counts c WHERE c.user_id = n.id
) d ON true
LEFT JOIN branch_earnings b ON b.earner_id = :root AND b.member_id = n.id
"""
_LISTED = f"""
WITH {_LIMIT},
n AS (
    SELECT t.id, t.level, lim.depth AS depth_limit, t.ord
    FROM unnest(:ids, :levels) WITH ORDINALITY AS t(id, level, ord), lim
)
"""  # noqa: S608 - built from the constant pieces above; values are bound parameters
_LISTED_NODES = text(_LISTED + _NODE_FIGURES + "ORDER BY n.ord").bindparams(
    bindparam("ids", type_=ARRAY(VARCHAR)),
    bindparam("levels", type_=ARRAY(INTEGER)),
)
# One statement for an expand: the access check (``downline_path`` walks up from the node,
# at most depth-limit steps, stopping at the root: O(depth)), then the keyset page of its
# children with their figures. No row: the node is outside the visible downline. One row
# with a null id: no (visible) children.
_OPEN = f"""
WITH {_LIMIT},
found AS (
    SELECT p AS path, cardinality(p) - 1 AS level, lim.depth
    FROM lim, downline_path(:root, :node, lim.depth) AS p
    WHERE p IS NOT NULL
),
n AS (
    SELECT c.id, found.level + 1 AS level, found.depth AS depth_limit
    FROM found CROSS JOIN LATERAL (
        SELECT id, created_at FROM users
        WHERE referred_by = :node AND (created_at, id) > (:after_at, :after_id)
          AND found.level < found.depth
        ORDER BY created_at, id
        LIMIT :limit
    ) c
)
SELECT found.path, found.level AS node_level, found.depth AS limit_depth, page.*
FROM found LEFT JOIN ({_NODE_FIGURES}) page ON true
ORDER BY page.created_at, page.id
"""  # noqa: S608 - built from the constant pieces above; values are bound parameters
_OPEN_NODE = text(_OPEN)
_OPEN_NODE_SQL = for_driver(_OPEN_NODE)


def _to_node(row) -> TreeNode:
    return TreeNode(
        id=row.id,
        username=row.username,
        joined_at=row.created_at,
        status=row.status,
        level=row.level,
        direct=row.direct,
        downline=row.downline,
        earned=row.earned,
        visible_levels=max(row.depth_limit - row.level, 0),
    )


def open_node(scope: TreeScope, node_id: str, after: Cursor | None = None) -> OpenedNode | None:
    """The node's path from the root and up to ``PAGE_SIZE`` of its children in join order
    after ``after`` (keyset), in one statement; None when the node is not in the scope's
    visible downline. Costs one index lookup per level between root and node plus the page:
    independent of the network's size. No children are listed at the depth limit."""
    if len(node_id) > 32:
        return None
    after = after or _FIRST
    params = {
        "node": node_id,
        "root": scope.root_id,
        "whole": scope.is_whole_downline,
        "after_at": after.created_at,
        "after_id": after.id,
        "limit": PAGE_SIZE + 1,
    }
    rows = all_rows(_OPEN_NODE_SQL, params)  # every expand: psycopg's rows (app/driver_sql.py)
    if not rows:
        return None
    first = rows[0]
    nodes = [_to_node(row) for row in rows if row.id is not None]
    more = len(nodes) > PAGE_SIZE
    nodes = nodes[:PAGE_SIZE]
    children = ChildrenPage(
        node_id, first.node_level + 1, nodes, nodes[-1].cursor if more else None
    )
    return OpenedNode(first.path, first.limit_depth, children)


def load_nodes(scope: TreeScope, path: list[str]) -> list[TreeNode]:
    """The tree rows of a path from ``open_node``, root first."""
    rows = db.session.execute(
        _LISTED_NODES,
        {
            "ids": path,
            "levels": list(range(len(path))),
            "root": scope.root_id,
            "whole": scope.is_whole_downline,
        },
    )
    return [_to_node(row) for row in rows]
