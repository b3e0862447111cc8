"""The maker's bank picks the best takers, with real banks on loopback and the real ``tchain``
command (docs/adr/0009-best-taker.md): three takers at two banks bid inside an offer's window;
the best two fill, the third is refused ``outbid`` and its hold released. After each: every
chain verifies offline, every asset sums to zero over both banks, no hold is left open, and
each bank's audit is clean."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from cli.local import LocalBank
from tests.integration.test_partial_fills import B1, B2, USD, balances, create, wallet
from tests.integration.test_partial_fills import sound_after as sound_after
from tests.realbanks import eventually
from tests.realwallets import customer, ok
from validator.peers import add_peer

EUR2 = f"{B2}:EUR"
WINDOW_S = 6


@pytest.fixture(scope="module")
def banks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("best")
    b1 = LocalBank(base / "b1", B1, assets=("USD",))
    b2 = LocalBank(base / "b2", B2, assets=("EUR",))
    with b1, b2:
        add_peer(b1.config, b2.url)
        add_peer(b2.config, b1.url)
        yield {"b1": b1, "b2": b2, "base": base}


def listed(path, offer: str) -> dict[str, Any] | None:
    found = [o for o in json.loads(ok("offer", "list", "--json", wallet=path).stdout)["offers"]
             if o["id"] == offer]
    return found[0] if found else None


def test_three_bids_at_two_banks_the_best_two_fill_the_third_is_outbid(banks):
    alice = wallet(banks, "alice", "b1", "1000")  # the maker, at bank 1
    carol = customer(banks["base"], "carol", banks["b1"])  # a taker at the maker's bank
    bob, dave = wallet(banks, "bob", "b2", "1000"), wallet(banks, "dave", "b2", "1000")
    ok("pay", f"carol*{B1}", "100", EUR2, wallet=bob)  # carol's EUR comes from bank 2
    ok("pay", f"carol*{B1}", "100", EUR2, wallet=dave)
    eventually(lambda: balances(carol).get(EUR2) == (200, 0))
    start = time.monotonic()
    offer = create(alice, ("100", USD), ("90", EUR2), "--min-fill", "10",
                   "--window", str(WINDOW_S))
    eventually(lambda: listed(bob, offer) is not None)
    assert "best bids of its first 6 s" in ok("offer", "list", wallet=bob).stdout
    # inside the window: carol bids 1.1 a unit, bob 1.0, dave the price (0.9)
    waiting = ok("offer", "take", offer[:16], "--amount", "60", "--price", "60",
                 wallet=bob).stdout
    assert "pending" in waiting
    ok("offer", "take", offer[:16], "--amount", "50", wallet=dave)  # the price: 45
    bid = ok("offer", "take", offer[:16], "--amount", "40", "--price", "44", wallet=carol)
    assert "held until its window closes" in bid.stdout
    assert time.monotonic() - start < WINDOW_S, "the bids came too late for this test"
    assert balances(alice)[USD] == (1000, 100)  # nothing decided yet
    assert balances(carol)[EUR2] == (200, 44) and balances(dave)[EUR2] == (900, 45)
    eventually(lambda: balances(alice).get(EUR2) == (104, 0), timeout=60)
    assert balances(alice)[USD] == (900, 0)
    assert balances(carol) == {EUR2: (156, 0), USD: (40, 0)}
    eventually(lambda: balances(bob).get(USD) == (60, 0), timeout=60)
    assert balances(bob)[EUR2] == (840, 0)
    eventually(lambda: balances(dave)[EUR2] == (900, 0), timeout=60)  # outbid: released
    assert USD not in balances(dave) or balances(dave)[USD] == (0, 0)
    history = json.loads(ok("history", "--json", wallet=dave).stdout)["entries"]
    assert [e["kind"] for e in history][-2:] == ["take", "release"]
    assert listed(bob, offer) is None
