"""The vendored htmx is the pinned npm release, byte for byte."""

from __future__ import annotations

import hashlib
import re

from tests.services_under_test import ROOT

VENDOR = ROOT / "static" / "vendor"


def test_vendored_htmx_matches_the_recorded_checksum():
    table = (VENDOR / "VENDORED.md").read_text()
    row = re.search(r"\| (htmx-2\.0\.\d+\.min\.js) \|.*\| ([0-9a-f]{64}) \|", table)
    assert row, "VENDORED.md lists the htmx file and its sha256"
    name, digest = row.groups()
    assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest


def test_layout_loads_the_vendored_htmx(client):
    html = client.get("/").get_data(as_text=True)
    name = re.search(r"/static/vendor/(htmx-2\.0\.\d+\.min\.js)", html).group(1)
    assert client.get(f"/static/vendor/{name}").status_code == 200
