"""The tree and search views, shared by the affiliate's own tree and the admin's view of anyone's.

Each takes the scope (whose tree, how deep) and the URLs to link nodes to; everything else is
the same: parse the query string, call the downline services, render a page or a fragment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlencode

from flask import abort, g, request, url_for

from app.htmx import render, wants_fragment
from app.pagination import Cursor, cursor_arg
from app.services.network.downline import PAGE_SIZE, TreeScope, load_nodes, open_node
from app.services.network.downline_search import MAX_QUERY_LENGTH, search_downline


@dataclass(frozen=True)
class TreeLinks:
    """Where a tree links to: its own endpoint (for nodes and pages) and its search."""

    tree_endpoint: str
    search_endpoint: str
    title: str
    args: dict[str, str] = field(default_factory=dict)

    def node(self, node_id: str, after: Cursor | None = None) -> str:
        # A page links every node: build the route once per request, then add the query.
        if "tree_url" not in g:
            g.tree_url = url_for(self.tree_endpoint, **self.args)
        query = {"node": node_id, "after": after.encode()} if after else {"node": node_id}
        return f"{g.tree_url}?{urlencode(query)}"

    def search(self) -> str:
        return url_for(self.search_endpoint, **self.args)


def show_tree(scope: TreeScope, links: TreeLinks):
    """``?node=<id>`` opens the tree at that node (404 outside the visible downline);
    ``&after=<cursor>`` shows its next page of children. HTMX gets only the children."""
    node_id = request.args.get("node") or scope.root_id
    after = cursor_arg("after")
    opened = open_node(scope, node_id, after)
    if opened is None:
        abort(404)
    # The fragment is only the children; the page also shows the path down from the root.
    return render(
        "tree/network.html",
        "tree/_children.html",
        scope=scope,
        opened=opened,
        path=[] if wants_fragment() else load_nodes(scope, opened.path),
        children=opened.children,
        links=links,
        page_size=PAGE_SIZE,
    )


def show_search(scope: TreeScope, links: TreeLinks):
    """``?q=<prefix>``: matches in the visible downline with their paths (fragment for HTMX)."""
    result = search_downline(scope, request.args.get("q"))
    return render(
        "tree/search.html",
        "tree/_search_results.html",
        result=result,
        links=links,
        root_id=scope.root_id,
        max_query_length=MAX_QUERY_LENGTH,
    )
