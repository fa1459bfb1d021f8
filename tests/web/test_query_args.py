"""Query strings never reach url_for as its own arguments (``endpoint``, ``_method`` ...)."""

from __future__ import annotations

import re

from tests.conftest import log_in
from tests.factories import make_chain, make_sale

HX = {"HX-Request": "true"}
_MORE = re.compile(r'class="show-more"><td colspan="8">\s*<a href="([^"]+)"')
_CSV = re.compile(r'<a [^>]*href="(/commissions\.csv[^"]*)"')
_URL_FOR_KEYS = ("endpoint", "_method", "_external", "_scheme", "_anchor", "values")


def test_unknown_query_keys_on_commissions_are_ignored_in_its_links(client):
    root, buyer = make_chain(2)
    for _ in range(51):  # one more than a page: the page links to the next one
        make_sale(buyer, "10.00")
    log_in(client, root.email)
    for key in _URL_FOR_KEYS:
        for headers in ({}, HX):
            response = client.get(f"/commissions?tier=1&{key}=javascript", headers=headers)
            assert response.status_code == 200, key
            html = response.get_data(as_text=True)
            links = [_MORE.search(html).group(1), _CSV.search(html).group(1)]
            for link in links:
                assert "tier=1" in link and f"{key}=" not in link, (key, link)
                assert link.startswith("/commissions")
