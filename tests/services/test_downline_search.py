"""Search by username prefix in one's downline: both plans agree, paths lead to the match."""

from __future__ import annotations

import pytest

from app.services.network import downline_search
from app.services.network.downline import admin_scope, affiliate_scope
from app.services.network.downline_search import prefix_range, search_downline
from tests.factories import make_chain, make_user


@pytest.fixture(params=["walk down", "by name"])
def plan(request, monkeypatch):
    """Run each test with both plans: the small-downline walk and the name index."""
    if request.param == "by name":
        monkeypatch.setattr(downline_search, "WALK_DOWN_LIMIT", -1)
    return request.param


def _names(result) -> list[list[str]]:
    return [[step.username for step in path] for path in result.paths]


def test_matches_come_with_their_path_from_the_root(plan):
    root, child, grandchild = make_chain(3)
    make_user(referrer=child, username="maria")
    make_user(referrer=grandchild, username="Marco")
    make_user(username="martha")  # not in the downline
    result = search_downline(affiliate_scope(root.id), "  MAR ")
    assert result.query == "mar"
    assert _names(result) == [
        [root.username, child.username, grandchild.username, "Marco"],
        [root.username, child.username, "maria"],
    ]


def test_members_beyond_the_max_tier_are_found_by_admins_only(plan):
    chain = make_chain(4)
    deep = make_user(referrer=chain[3], username="deepest")
    assert search_downline(affiliate_scope(chain[0].id), "deep").paths == []
    assert _names(search_downline(admin_scope(chain[0].id), "deep"))[0][-1] == "deepest"
    assert search_downline(affiliate_scope(chain[1].id), "deep").paths[0][-1].id == deep.id


def test_the_root_and_the_uplines_are_not_matches(plan):
    root, child = make_chain(2)
    assert search_downline(affiliate_scope(child.id), root.username).paths == []
    assert search_downline(affiliate_scope(child.id), child.username).paths == []


def test_like_wildcards_are_searched_literally(plan):
    root = make_user()
    make_user(referrer=root, username="a_b")
    make_user(referrer=root, username="axb")
    make_user(referrer=root, username="100%")
    assert [p[-1] for p in _names(search_downline(affiliate_scope(root.id), "a_"))] == ["a_b"]
    assert _names(search_downline(affiliate_scope(root.id), "%")) == []
    assert search_downline(affiliate_scope(root.id), "").paths == []


def test_name_plan_says_when_it_stopped_early(monkeypatch):
    monkeypatch.setattr(downline_search, "WALK_DOWN_LIMIT", -1)
    monkeypatch.setattr(downline_search, "CANDIDATE_LIMIT", 3)
    root = make_user()
    for n in range(4):
        make_user(username=f"outsider{n}")
    make_user(referrer=root, username="outsider9")
    result = search_downline(affiliate_scope(root.id), "outsider")
    assert result.is_truncated
    assert result.paths == []  # the one match sorts after the three examined names
    assert not search_downline(affiliate_scope(root.id), "outsider9").is_truncated


def test_prefix_range_bounds_every_name_with_the_prefix():
    assert prefix_range("ab") == ("ab", "ac")
    assert prefix_range("a\ud7ff") == ("a\ud7ff", "a\ue000")  # skips the surrogates
    low, high = prefix_range("\U0010ffff")
    assert low <= "\U0010ffff" + "z" * 39 < high


def test_non_ascii_names_are_found(plan):
    root = make_user()
    make_user(referrer=root, username="Zoë")
    make_user(referrer=root, username="zoe")
    assert [p[-1] for p in _names(search_downline(affiliate_scope(root.id), "ZOË"))] == ["Zoë"]
