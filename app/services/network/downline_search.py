"""Search one's downline by username prefix, with the path from the root to each match.

Two plans, chosen by the precomputed size of the visible downline, so neither grows with
the network: a small downline is walked from the root and filtered by name; a large one is
searched by name through the prefix index, each candidate kept only if walking up from it
reaches the root within the depth limit (a bounded number of candidates, each O(depth)).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, VARCHAR

from app.extensions import db
from app.services.network.downline import TreeScope, depth_limit

RESULT_LIMIT = 20
MAX_QUERY_LENGTH = 40
# Up to this many visible members, walking the downline is cheaper than the name index.
WALK_DOWN_LIMIT = 5_000
# How many same-prefix usernames the name plan examines before asking for more letters.
CANDIDATE_LIMIT = 2_000

_VISIBLE_SIZE = text(
    "SELECT coalesce(sum(members), 0) FROM downline_counts "
    "WHERE user_id = :root AND depth <= :depth_limit"
)
# LATERAL keeps the planner on the (referred_by, ...) index at every level; a plain join
# lets it pick a hash join over all users once the recursion's estimate grows.
_WALK_DOWN = text(
    """
    WITH RECURSIVE down (id, path) AS (
        SELECT id, ARRAY[CAST(:root AS varchar), id] FROM users WHERE referred_by = :root
        UNION ALL
        SELECT c.id, down.path || c.id
        FROM down CROSS JOIN LATERAL (
            SELECT id FROM users WHERE referred_by = down.id
        ) c
        WHERE cardinality(down.path) <= :depth_limit
    )
    SELECT down.path FROM down JOIN users u ON u.id = down.id
    WHERE lower(u.username) LIKE :pattern ESCAPE '\\'
    ORDER BY lower(u.username) USING ~<~
    LIMIT :limit
    """
)
# The range on the pattern index is spelled out (not left to the planner to derive from
# LIKE), and names are ordered by that index's operator (byte order), so that the generic
# plan of the statement psycopg prepares after five runs still reads the index in order.
_PREFIX = (
    "lower(username) ~>=~ :low AND lower(username) ~<~ :high "
    "AND lower(username) LIKE :pattern ESCAPE '\\'"
)
# Candidates stream in username order; each is walked up by ``downline_path`` and the scan
# stops at the first ``limit`` that lead to the root.
_BY_NAME = text(
    f"""
    SELECT p AS path
    FROM (
        SELECT id FROM users
        WHERE {_PREFIX} AND id <> :root
        ORDER BY lower(username) USING ~<~
        LIMIT :candidates
    ) c
    CROSS JOIN LATERAL downline_path(:root, c.id, :depth_limit) AS p
    WHERE p IS NOT NULL
    LIMIT :limit
    """  # noqa: S608 - constant pieces; values are bound parameters
)
_CANDIDATES = text(
    f"SELECT count(*) FROM (SELECT 1 FROM users WHERE {_PREFIX} LIMIT :candidates) c"  # noqa: S608
)
_USERNAMES = text("SELECT id, username FROM users WHERE id = ANY(:ids)").bindparams(
    bindparam("ids", type_=ARRAY(VARCHAR))
)


@dataclass(frozen=True)
class PathStep:
    id: str
    username: str


@dataclass(frozen=True)
class SearchResult:
    query: str
    paths: list[list[PathStep]]  # root first, the match last
    is_truncated: bool  # the name plan hit its candidate limit: more letters may find more


def normalize_query(raw: str | None) -> str:
    """The prefix as searched: trimmed, lower-case, at most ``MAX_QUERY_LENGTH`` characters."""
    return (raw or "").strip().lower()[:MAX_QUERY_LENGTH]


def like_prefix(prefix: str) -> str:
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def prefix_range(prefix: str) -> tuple[str, str]:
    """Byte-order bounds of the strings starting with ``prefix`` (UTF-8 order is code point
    order, so the upper bound is the prefix with its last character's successor)."""
    last = ord(prefix[-1])
    successor = last + 1 if last + 1 not in range(0xD800, 0xE000) else 0xE000
    if successor > 0x10FFFF:  # no successor: above every username (at most 40 characters)
        return prefix, prefix[:-1] + "\U0010ffff" * 41
    return prefix, prefix[:-1] + chr(successor)


def search_downline(scope: TreeScope, raw_query: str | None) -> SearchResult:
    """Members of the scope's visible downline whose username starts with the query.

    Results are ordered by username, at most ``RESULT_LIMIT``; the root is never a match.
    """
    query = normalize_query(raw_query)
    if not query:
        return SearchResult(query, [], False)
    params = {
        "root": scope.root_id,
        "depth_limit": depth_limit(scope),
        "pattern": like_prefix(query),
        **dict(zip(("low", "high"), prefix_range(query), strict=True)),
        "limit": RESULT_LIMIT,
    }
    visible = db.session.execute(_VISIBLE_SIZE, params).scalar_one()
    truncated = False
    if visible <= WALK_DOWN_LIMIT:
        paths = list(db.session.execute(_WALK_DOWN, params).scalars())
    else:
        params["candidates"] = CANDIDATE_LIMIT
        paths = list(db.session.execute(_BY_NAME, params).scalars())
        truncated = db.session.execute(_CANDIDATES, params).scalar_one() >= CANDIDATE_LIMIT
    return SearchResult(query, _named(paths), truncated)


def _named(paths: list[list[str]]) -> list[list[PathStep]]:
    ids = list({node_id for path in paths for node_id in path})
    names = dict(db.session.execute(_USERNAMES, {"ids": ids}).all()) if ids else {}
    return [[PathStep(node_id, names[node_id]) for node_id in path] for path in paths]
