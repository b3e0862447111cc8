"""Listing plans (``GET /v1/plans``, validator.plans.Plans.listed) pages through the plans
kept, from the summary kept with each log, replaying none; /metrics counts them by state."""

from __future__ import annotations

from typing import Any

from tchain.plans import Execution
from tests.unit.validator.test_plans import B1, B2, dvp, net, signed
from validator.plans import Plans

__all__ = ["net"]  # the fixture, shared


def test_plans_are_listed_page_by_page_from_their_summaries(net, monkeypatch):
    network, banks, people = net
    made = {signed(network, banks, people, dvp(), ("alice", B1), ("bob", B2)),
            signed(network, banks, people, dvp(), ("alice", B1))}
    plans = Plans(banks[B1].ledger)
    alice, carol = people["alice"].key.public_key, banks[B1].join("carol").key.public_key

    def no_replay(*_: Any) -> None:
        raise AssertionError("a listing replays no log")

    monkeypatch.setattr(Execution, "replay", no_replay)
    seen, after, pages = [], None, 0
    while True:
        page, after = plans.listed(alice, after, limit=1)
        seen += page
        pages += 1
        if after is None:
            break
    assert {p["id"] for p in seen} == made and pages >= 2
    assert {p["state"] for p in seen} == {"completed", "proposed"}
    assert plans.listed(carol) == ([], None)  # a customer the plans do not name sees none
    assert plans.states() == {"completed": 1, "proposed": 1}
