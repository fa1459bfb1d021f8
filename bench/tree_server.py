"""The app as the bench scripts serve it with gunicorn, plus reference routes on the same
server, so they are measured in one run on the same workers:

- ``/bench/hello``: a hello-world Flask route (no session, no database);
- ``/bare/expand?node=<id>``: the least the machine must do for the expand fragment: the
  same SQL (the viewer's user row, as the login check loads it, then the one tree statement)
  over one persistent psycopg connection per worker and the same Jinja template, with no
  Flask request handling, no session cookie, no ORM. The viewer is ``BENCH_ROOT_ID``
  (mounted only when that is set);
- ``/bare/webhook``: the least a signed webhook must do (see ``BareWebhook``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from urllib.parse import parse_qs

import psycopg
from psycopg.rows import namedtuple_row
from psycopg.types.json import Jsonb
from redis import Redis
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import psycopg as pg_dialect
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from app import create_app
from app.models import User
from app.pagination import Cursor
from app.services.network.downline import _FIRST, _OPEN_NODE, PAGE_SIZE, ChildrenPage, _to_node


def _sql(statement) -> str:
    return str(statement.compile(dialect=pg_dialect.dialect()))


class BareLinks:
    title = "Your network"

    def node(self, node_id: str, after: Cursor | None = None) -> str:
        return f"/network?node={node_id}" + (f"&after={after.encode()}" if after else "")


class BareExpand:
    def __init__(self, flask_app, root_id: str) -> None:
        self.url = os.environ["DATABASE_URL"]
        self.root_id = root_id
        self.template = flask_app.jinja_env.get_template("tree/_children.html")
        self.user_sql = _sql(select(User).where(User.id == root_id))
        self.open_sql = _sql(_OPEN_NODE)
        self.links = BareLinks()
        self.conn: psycopg.Connection | None = None  # opened in the worker, after the fork

    def __call__(self, environ, start_response):
        if self.conn is None:
            self.conn = psycopg.connect(self.url, autocommit=True, row_factory=namedtuple_row)
        node = parse_qs(environ.get("QUERY_STRING", "")).get("node", [""])[0]
        self.conn.execute(self.user_sql, {"id_1": self.root_id}).fetchone()
        rows = self.conn.execute(
            self.open_sql,
            {
                "node": node,
                "root": self.root_id,
                "whole": False,
                "after_at": _FIRST.created_at,
                "after_id": _FIRST.id,
                "limit": PAGE_SIZE + 1,
            },
        ).fetchall()
        if not rows:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found"]
        nodes = [_to_node(row) for row in rows if row.id is not None]
        more = len(nodes) > PAGE_SIZE
        nodes = nodes[:PAGE_SIZE]
        level = rows[0].node_level + 1
        children = ChildrenPage(node, level, nodes, nodes[-1].cursor if more else None)
        body = self.template.render(children=children, links=self.links).encode()
        start_response(
            "200 OK",
            [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body)))],
        )
        return [body]


class BareWebhook:
    """The least a signed webhook must do: check the HMAC (as Stripe signs), insert the
    event (``ON CONFLICT DO NOTHING``, autocommit), set the drain flag in Redis, answer."""

    def __init__(self) -> None:
        self.secret = os.environ.get("STRIPE_WEBHOOK_SECRET", "").encode()
        self.conn: psycopg.Connection | None = None
        self.redis: Redis | None = None

    def __call__(self, environ, start_response):
        if self.conn is None:
            self.conn = psycopg.connect(os.environ["DATABASE_URL"], autocommit=True)
            self.redis = Redis.from_url(os.environ["REDIS_URL"])
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        parts = dict(p.split("=", 1) for p in environ.get("HTTP_STRIPE_SIGNATURE", "").split(","))
        signed = parts.get("t", "").encode() + b"." + body
        expected = hmac.new(self.secret, signed, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, parts.get("v1", "")):
            start_response("400 Bad Request", [("Content-Type", "text/plain")])
            return [b"bad signature"]
        event = json.loads(body)
        self.conn.execute(
            "INSERT INTO webhook_events (provider, event_id, event_type, payload) "
            "VALUES ('stripe', %s, %s, %s) ON CONFLICT DO NOTHING",
            (event["id"] + "-bare", event["type"], Jsonb(event)),
        )
        self.redis.set("bench:bare-drain", 1, nx=True, ex=30)
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b'{"received": true}']


app = create_app()


@app.get("/bench/hello")
def hello():
    return "Hello, world!"


_bare = {"/bare/webhook": BareWebhook()}
if os.environ.get("BENCH_ROOT_ID"):  # bench/tree.py
    _bare["/bare/expand"] = BareExpand(app, os.environ["BENCH_ROOT_ID"])
app.wsgi_app = DispatcherMiddleware(app.wsgi_app, _bare)
