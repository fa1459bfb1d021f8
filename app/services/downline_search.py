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
from app.services.downline import TreeScope, depth_limit

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
_WALK_DOWN = text(
    """
    WITH RECURSIVE down (id, path) AS (
        SELECT id, ARRAY[CAST(:root AS varchar), id] FROM users WHERE referred_by = :root
        UNION ALL
        SELECT u.id, down.path || u.id
        FROM down JOIN users u ON u.referred_by = down.id
        WHERE cardinality(down.path) <= :depth_limit
    )
    SELECT down.path FROM down JOIN users u ON u.id = down.id
    WHERE lower(u.username) LIKE :pattern ESCAPE '\\'
    ORDER BY lower(u.username)
    LIMIT :limit
    """
)
_BY_NAME = text(
    """
    WITH RECURSIVE candidates AS (
        SELECT id, lower(username) AS name FROM users
        WHERE lower(username) LIKE :pattern ESCAPE '\\' AND id <> :root
        ORDER BY lower(username)
        LIMIT :candidates
    ), up (candidate, id, parent, steps) AS (
        SELECT c.id, u.id, u.referred_by, 0
        FROM candidates c JOIN users u ON u.id = c.id
        UNION ALL
        SELECT up.candidate, u.id, u.referred_by, up.steps + 1
        FROM up JOIN users u ON u.id = up.parent
        WHERE up.id <> :root AND up.steps < :depth_limit
    )
    SELECT array_agg(up.id ORDER BY up.steps DESC) AS path
    FROM up JOIN candidates c ON c.id = up.candidate
    GROUP BY up.candidate, c.name
    HAVING bool_or(up.id = :root)
    ORDER BY c.name
    LIMIT :limit
    """
)
_CANDIDATES = text(
    "SELECT count(*) FROM (SELECT 1 FROM users WHERE lower(username) LIKE :pattern "
    "ESCAPE '\\' LIMIT :candidates) c"
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
