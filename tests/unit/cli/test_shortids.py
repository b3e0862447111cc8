"""Ids as people copy them: any unique prefix of a hex id stands for it."""

from __future__ import annotations

import pytest

from cli.errors import BadUsageError
from cli.shortids import resolve_prefix

IDS = {"7ef0fbc5d229cf7a" + "0" * 48: "a", "7ef1aa00" + "1" * 56: "b", "828f4632" + "2" * 56: "c"}


def test_a_unique_prefix_stands_for_its_id():
    assert resolve_prefix("828f", IDS, "entry") == "c"
    assert resolve_prefix("7EF0FB", IDS, "entry") == "a"  # case does not matter
    assert resolve_prefix("7ef0fbc5d229cf7a" + "0" * 48, IDS, "entry") == "a"


def test_a_prefix_of_several_ids_asks_for_more():
    with pytest.raises(BadUsageError, match="7ef matches 2 of your entries: type more"):
        resolve_prefix("7ef", IDS, "entry")


def test_ids_that_stand_for_one_thing_are_not_ambiguous():
    assert resolve_prefix("7ef", {**IDS, "7ef1aa00" + "1" * 56: "a"}, "entry") == "a"


def test_no_match_is_none():
    assert resolve_prefix("abcd", IDS, "entry") is None


@pytest.mark.parametrize("typed", ["", "xyz", "7ef0 ", "0x7ef0", "7" * 65])
def test_what_is_no_hex_id_is_bad_usage(typed):
    with pytest.raises(BadUsageError, match="is not an entry id"):
        resolve_prefix(typed, IDS, "entry")
