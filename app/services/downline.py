"""The downline tree: who sits below whom, read level by level with size-independent cost.

Every read here is bounded by the page size or by the depth of one path, never by the size
of a subtree: children come from the ``(referred_by, created_at, id)`` index in keyset
pages, counts and branch earnings from the trigger-kept ``downline_counts`` and
``branch_earnings`` tables, and the access check walks up ``referred_by`` from the node.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, INTEGER, VARCHAR

from app.extensions import db
from app.services.program import get_settings

PAGE_SIZE = 50
# "No depth limit" for admins, as a number SQL can compare with: deeper than any network.
UNLIMITED = 32_767
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class TreeScope:
    """Whose tree is shown and how many levels below its root the viewer may see."""

    root_id: str
    max_levels: int | None  # None: the whole downline (admins)

    @property
    def depth_limit(self) -> int:
        return UNLIMITED if self.max_levels is None else self.max_levels


def affiliate_scope(user_id: str) -> TreeScope:
    """An affiliate sees their own downline down to the program's max tier."""
    return TreeScope(user_id, get_settings().max_tier_level)


def admin_scope(root_id: str) -> TreeScope:
    return TreeScope(root_id, None)


@dataclass(frozen=True)
class Cursor:
    """Keyset position among siblings: the last (join time, id) shown."""

    created_at: datetime
    id: str

    def encode(self) -> str:
        return f"{(self.created_at - _EPOCH) // timedelta(microseconds=1)}.{self.id}"

    @classmethod
    def decode(cls, token: str) -> Cursor:
        """Raises ValueError on anything that is not a token made by ``encode``."""
        micros, _, node_id = token.partition(".")
        if not node_id or len(node_id) > 32 or not micros.lstrip("-").isdigit():
            raise ValueError("not a page cursor")
        try:
            return cls(_EPOCH + timedelta(microseconds=int(micros)), node_id)
        except OverflowError as exc:
            raise ValueError("not a page cursor") from exc


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


# One row per node of ``nodes(id, level, ord)``: the figures a tree row shows, each from an
# index lookup (users, the tier-1 referral, at most max-depth counters, one earnings row).
_NODE_ROWS = """
SELECT n.id, u.username, u.created_at, r.status, n.level,
       coalesce(d.direct, 0) AS direct, coalesce(d.downline, 0) AS downline,
       coalesce(b.amount, 0) AS earned
FROM nodes n
JOIN users u ON u.id = n.id
LEFT JOIN referrals r ON r.referred_user_id = n.id AND r.tier = 1
LEFT JOIN LATERAL (
    SELECT sum(c.members) FILTER (WHERE c.depth = 1) AS direct,
           sum(c.members) FILTER (WHERE c.depth <= :depth_limit - n.level) AS downline
    FROM downline_counts c WHERE c.user_id = n.id
) d ON true
LEFT JOIN branch_earnings b ON b.earner_id = :root AND b.member_id = n.id
ORDER BY n.ord
"""
_LISTED = """
WITH nodes AS (SELECT * FROM unnest(:ids, :levels) WITH ORDINALITY AS t(id, level, ord))
"""
_CHILDREN = """
WITH nodes AS (
    SELECT id, CAST(:level AS integer) AS level,
           row_number() OVER (ORDER BY created_at, id) AS ord
    FROM (
        SELECT id, created_at FROM users
        WHERE referred_by = :parent AND (created_at, id) > (:after_at, :after_id)
        ORDER BY created_at, id
        LIMIT :limit
    ) page
)
"""
_LISTED_NODES = text(_LISTED + _NODE_ROWS).bindparams(
    bindparam("ids", type_=ARRAY(VARCHAR)),
    bindparam("levels", type_=ARRAY(INTEGER)),
)
_CHILD_NODES = text(_CHILDREN + _NODE_ROWS)
# Walk up from the node, at most depth-limit steps, stopping at the root: O(depth).
_PATH_UP = text(
    """
    WITH RECURSIVE up (id, parent, steps) AS (
        SELECT id, referred_by, 0 FROM users WHERE id = :node
        UNION ALL
        SELECT u.id, u.referred_by, up.steps + 1
        FROM up JOIN users u ON u.id = up.parent
        WHERE up.id <> :root AND up.steps < :depth_limit
    )
    SELECT id FROM up ORDER BY steps DESC
    """
)


def _to_node(row, depth_limit: int) -> TreeNode:
    return TreeNode(
        id=row.id,
        username=row.username,
        joined_at=row.created_at,
        status=row.status,
        level=row.level,
        direct=row.direct,
        downline=row.downline,
        earned=row.earned,
        visible_levels=max(depth_limit - row.level, 0),
    )


def find_path(scope: TreeScope, node_id: str) -> list[str] | None:
    """Ids from the root down to ``node_id`` (root first), or None when the node is not in
    the scope's visible downline. Costs one index lookup per level between the two."""
    if len(node_id) > 32:
        return None
    ids = db.session.execute(
        _PATH_UP, {"node": node_id, "root": scope.root_id, "depth_limit": scope.depth_limit}
    ).scalars()
    path = list(ids)
    return path if path and path[0] == scope.root_id else None


def load_nodes(scope: TreeScope, path: list[str], first_level: int = 0) -> list[TreeNode]:
    """The tree rows of ``path`` (from ``find_path``, or its tail starting at ``first_level``)."""
    rows = db.session.execute(
        _LISTED_NODES,
        {
            "ids": path,
            "levels": list(range(first_level, first_level + len(path))),
            "root": scope.root_id,
            "depth_limit": scope.depth_limit,
        },
    )
    return [_to_node(row, scope.depth_limit) for row in rows]


def children_page(
    scope: TreeScope, parent_id: str, parent_level: int, after: Cursor | None = None
) -> ChildrenPage:
    """Up to ``PAGE_SIZE`` children of a node in join order after ``after`` (keyset).

    Empty when the parent sits at the viewer's depth limit: those members are not visible.
    """
    level = parent_level + 1
    if level > scope.depth_limit:
        return ChildrenPage(parent_id, level, [], None)
    after = after or _FIRST
    rows = db.session.execute(
        _CHILD_NODES,
        {
            "parent": parent_id,
            "level": level,
            "after_at": after.created_at,
            "after_id": after.id,
            "limit": PAGE_SIZE + 1,
            "root": scope.root_id,
            "depth_limit": scope.depth_limit,
        },
    )
    nodes = [_to_node(row, scope.depth_limit) for row in rows]
    more = len(nodes) > PAGE_SIZE
    nodes = nodes[:PAGE_SIZE]
    return ChildrenPage(parent_id, level, nodes, nodes[-1].cursor if more else None)
