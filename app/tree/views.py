"""The tree and search views, shared by the affiliate's own tree and the admin's view of anyone's.

Each takes the scope (whose tree, how deep) and the URLs to link nodes to; everything else is
the same: parse the query string, call the downline services, render a page or a fragment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import quote_plus

from flask import abort, request, url_for

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

    def search(self) -> str:
        return url_for(self.search_endpoint, **self.args)

    def for_request(self) -> RequestLinks:
        return RequestLinks(self)


class RequestLinks:
    """A tree's links with its route built once for this request: a page links every node
    (three links each, up to 50 nodes a page), and looking the route up in ``g`` and
    ``urlencode`` per link were about 7 % of an expand's CPU. Same URLs, byte for byte."""

    __slots__ = ("_links", "_node_url", "title")

    def __init__(self, links: TreeLinks) -> None:
        self._links = links
        self._node_url = url_for(links.tree_endpoint, **links.args) + "?node="
        self.title = links.title

    def node(self, node_id: str, after: Cursor | None = None) -> str:
        # As urlencode({"node": ..., "after": ...}) spells it.
        url = self._node_url + quote_plus(node_id)
        return f"{url}&after={quote_plus(after.encode())}" if after else url

    def search(self) -> str:
        return self._links.search()


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
        links=links.for_request(),
        page_size=PAGE_SIZE,
    )


def show_search(scope: TreeScope, links: TreeLinks):
    """``?q=<prefix>``: matches in the visible downline with their paths (fragment for HTMX)."""
    result = search_downline(scope, request.args.get("q"))
    return render(
        "tree/search.html",
        "tree/_search_results.html",
        result=result,
        links=links.for_request(),
        root_id=scope.root_id,
        max_query_length=MAX_QUERY_LENGTH,
    )
