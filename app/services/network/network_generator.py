"""A large, realistic referral network for demos and benchmarks, written with COPY.

Shape: a few hubs with tens of thousands of direct referrals (at a million users), power-law
fan-out everywhere else (each newcomer copies the referrer of a random member half the time,
which gives the heavy tail real programs show), some long chains, depth capped at 30.

Speed: the tree is drawn in Python, then users, their referral rows (tiers up to the max
tier) and their downline counts are streamed with COPY in one transaction. The counting
trigger is switched off for that transaction (its work is done here in bulk) and the
counts of the existing uplines above the attachment point are added in one upsert. So is
the "new referral" mail notices' trigger: generated members are no news to mail anyone.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, text

from app.extensions import db
from app.models import User
from app.services.accounts.passwords import hash_password
from app.services.program.demo import DEMO_PASSWORD
from app.services.program.program import get_settings

MAX_DEPTH = 30
ID_PREFIX = "gen"
# First names for usernames like ``mara4711``: prefix searches look like real ones.
_NAME_WORDS = (
    "ada alan alex amir ana anna ben bea cara chen dan dara eli ema eva fay finn gia "
    "hana ian ines ivo jada jon kai kim lara leo lin luca mae mara max mia nia noah nora "
    "oli omar pia raj rea remy rosa sam sara tao tess uma una val vera wes xia yara yuri "
    "zoe zara"
)
NAMES = tuple(_NAME_WORDS.split())
_COPY_USERS = (
    "COPY users (id, username, email, password_hash, referral_code, referred_by, "
    "created_at, updated_at) FROM STDIN"
)
_COPY_REFERRALS = (
    "COPY referrals (id, referrer_id, referred_user_id, tier, status, created_at, updated_at) "
    "FROM STDIN"
)
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


@dataclass(frozen=True)
class GeneratedNetwork:
    users: int
    referrals: int
    max_depth: int
    largest_fan_out: int


class AlreadyGenerated(Exception):
    pass


def _parents(n: int, rng: random.Random) -> list[int]:
    """parent[i] < i for i >= 1; parent[0] = -1 (node 0 hangs under the attachment point)."""
    hubs = list(range(1, min(5, n)))
    parent = [-1] * n
    depth = [1] * n
    for i in range(1, n):
        if i <= len(hubs):
            p = 0
        elif i <= len(hubs) + MAX_DEPTH:
            p = i - 1  # one long line, so the network reaches the full depth early
        else:
            roll = rng.random()
            if roll < 0.12:
                p = rng.choice(hubs)
            elif roll < 0.16:
                p = i - 1  # chains: someone who signs up and immediately shares
            else:
                p = rng.randrange(i)
                if rng.random() < 0.5 and parent[p] >= 0:
                    p = parent[p]
        while depth[p] >= MAX_DEPTH:
            p = parent[p]
        parent[i] = p
        depth[i] = depth[p] + 1
    return parent


def _code(i: int) -> str:
    digits = []
    for _ in range(7):
        i, r = divmod(i, 32)
        digits.append(_CROCKFORD[r])
    return "Z" + "".join(reversed(digits))


def generate_network(n: int, attach_to: User, seed: int = 2026) -> GeneratedNetwork:
    """Add ``n`` users below ``attach_to``. Flushes only; the caller commits.

    Refuses to run twice on one database (the generated usernames would collide).
    """
    if db.session.scalar(select(User.id).where(User.id == f"{ID_PREFIX}0")):
        raise AlreadyGenerated("this database already holds a generated network")
    rng = random.Random(seed)  # noqa: S311 - demo data, not secrets
    max_tier = get_settings().max_tier_level
    parent = _parents(n, rng)
    ids = [f"{ID_PREFIX}{i}" for i in range(n)]
    uplines = _uplines_of(attach_to.id)  # attach_to first, then its referrer, ...
    password_hash = hash_password(DEMO_PASSWORD)
    start = datetime.now(UTC) - timedelta(days=730)
    step = timedelta(days=729) / max(n, 1)
    joined = [start + step * i for i in range(n)]

    above_of: list[tuple[str, ...]] = []  # everyone above node i, nearest first
    counts: Counter[tuple[str, int]] = Counter()
    referral_rows = 0

    raw = db.session.connection().connection.driver_connection
    db.session.flush()
    with raw.cursor() as cursor:
        cursor.execute("ALTER TABLE users DISABLE TRIGGER users_downline_counts")
        cursor.execute("ALTER TABLE users DISABLE TRIGGER users_mail_notices")
        with cursor.copy(_COPY_USERS) as copy:
            for i in range(n):
                p = parent[i]
                referrer = ids[p] if p >= 0 else attach_to.id
                name = f"{NAMES[i % len(NAMES)]}{i}"
                copy.write_row(
                    (
                        ids[i],
                        name,
                        f"{name}@gen.example.com",
                        password_hash,
                        _code(i),
                        referrer,
                        joined[i],
                        joined[i],
                    )
                )
        with cursor.copy(_COPY_REFERRALS) as copy:
            for i in range(n):
                p = parent[i]
                above = (ids[p], *above_of[p]) if p >= 0 else tuple(uplines)
                above_of.append(above)
                at = joined[i]
                for depth, ancestor in enumerate(above, start=1):
                    counts[ancestor, depth] += 1
                    if depth <= max_tier:
                        referral_rows += 1
                        copy.write_row(
                            (f"{ids[i]}t{depth}", ancestor, ids[i], depth, "pending", at, at)
                        )
        cursor.execute("CREATE TEMP TABLE generated_counts (LIKE downline_counts) ON COMMIT DROP")
        with cursor.copy("COPY generated_counts (user_id, depth, members) FROM STDIN") as copy:
            for (user_id, depth), members in counts.items():
                copy.write_row((user_id, depth, members))
        cursor.execute(
            "INSERT INTO downline_counts (user_id, depth, members) "
            "SELECT user_id, depth, members FROM generated_counts ORDER BY user_id, depth "
            "ON CONFLICT (user_id, depth) "
            "DO UPDATE SET members = downline_counts.members + EXCLUDED.members"
        )
        cursor.execute("ALTER TABLE users ENABLE TRIGGER users_downline_counts")
        cursor.execute("ALTER TABLE users ENABLE TRIGGER users_mail_notices")
    fan_out = Counter(parent)
    fan_out.pop(-1, None)
    return GeneratedNetwork(
        users=n,
        referrals=referral_rows,
        max_depth=max(map(len, above_of)) - len(uplines) + 1 if n else 0,
        largest_fan_out=max(fan_out.values(), default=0),
    )


def _uplines_of(user_id: str) -> list[str]:
    """``user_id`` and everyone above it, nearest first."""
    rows = db.session.execute(
        text(
            """
            WITH RECURSIVE up (id, parent, steps) AS (
                SELECT id, referred_by, 0 FROM users WHERE id = :id
                UNION ALL
                SELECT u.id, u.referred_by, up.steps + 1
                FROM up JOIN users u ON u.id = up.parent
            )
            SELECT id FROM up ORDER BY steps
            """
        ),
        {"id": user_id},
    ).scalars()
    return list(rows)
