"""The app as ``bench/tree.py`` serves it with gunicorn, plus two reference routes on the
same server, so all three are measured in one run on the same workers:

- ``/bench/hello``: a hello-world Flask route (no session, no database);
- ``/bare/expand?node=<id>``: the least the machine must do for the expand fragment: the
  same SQL (the viewer's user row, as the login check loads it, then the one tree statement)
  over one persistent psycopg connection per worker and the same Jinja template, with no
  Flask request handling, no session cookie, no ORM. The viewer is ``BENCH_ROOT_ID``.
"""

from __future__ import annotations

import os
from urllib.parse import parse_qs

import psycopg
from psycopg.rows import namedtuple_row
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import psycopg as pg_dialect
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from app import create_app
from app.models import User
from app.pagination import Cursor
from app.services.downline import _FIRST, _OPEN_NODE, PAGE_SIZE, ChildrenPage, _to_node


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


app = create_app()


@app.get("/bench/hello")
def hello():
    return "Hello, world!"


app.wsgi_app = DispatcherMiddleware(
    app.wsgi_app, {"/bare/expand": BareExpand(app, os.environ["BENCH_ROOT_ID"])}
)
