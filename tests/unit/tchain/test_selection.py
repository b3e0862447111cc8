"""The best taker in the core (docs/adr/0009-best-taker.md): the ranking of bids, the window an
offer may set, bids above the price only where an offer has a window, and the offline verifier
holding a bid's fill or settle to what the take gave."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tchain.errors import EncodingError, VerificationError
from tchain.model import WINDOW_MAX_MS, WINDOW_MIN_MS, SignedEntry, SignedIntent
from tchain.selection import Bid, bid_of, ranked, window_closes
from tchain.state import Hold, check_take_terms, fill_effects
from tchain.verify import verify_chain
from tests.helpers import Clock, sign_entry_as
from tests.interbank_net import NetBank
from tests.unit.tchain.test_fills import B1, EUR, USD, _forged_fill, _hold, _take, _take_entry

# --- the ranking --------------------------------------------------------------------------------


def test_ranks_by_what_a_take_gives_per_unit_then_by_arrival_then_by_id():
    bids = [Bid("cc", 10, 10, 5), Bid("bb", 10, 12, 9), Bid("aa", 20, 20, 5),
            Bid("dd", 5, 6, 1), Bid("ab", 10, 10, 5)]
    # 12/10 = 6/5 first: "dd" came earlier; then the three at 1/1: by arrival, then id
    assert [b.take for b in ranked(bids)] == ["dd", "bb", "aa", "ab", "cc"]


def test_compares_rates_exactly_where_floats_cannot():
    """p/n as floats: 10**30+1 over 10**30 equals 1.0; cross-multiplied it is more."""
    big = 10**30
    assert (big + 1) / big == 1.0
    assert [b.take for b in ranked([Bid("aa", 1, 1, 0), Bid("bb", big, big + 1, 1)])] == \
        ["bb", "aa"]


def test_takes_that_came_after_the_close_come_after_those_that_waited_first_come_first():
    bids = [Bid("aa", 10, 10, 5), Bid("bb", 10, 99, 120), Bid("cc", 10, 50, 101),
            Bid("dd", 10, 9, 99)]
    assert [b.take for b in ranked(bids, closes=100)] == ["aa", "dd", "cc", "bb"]


@given(st.lists(st.tuples(st.integers(1, 10**20), st.integers(1, 10**20),
                          st.integers(0, 10)), min_size=1, max_size=8, unique=True))
def test_the_ranking_is_a_total_order_whatever_the_input_order(raw):
    bids = [Bid(f"{i:064x}", n, p, at) for i, (n, p, at) in enumerate(raw)]
    best = ranked(bids)
    assert ranked(reversed(bids)) == best
    for a, b in itertools.pairwise(best):
        assert a.gives * b.gets >= b.gives * a.gets


# --- the window and bids ------------------------------------------------------------------------


def _offer_intent(window):
    body = {"sell": {"asset": USD, "amount": "100"}, "buy": {"asset": EUR, "amount": "90"},
            "expires": 2_000_000_000_000, "window": window}
    return {"intent": {"type": "offer", "chain": "ab" * 32, "seq": 1, "time": 1, "body": body},
            "sig": "00" * 64}


@pytest.mark.parametrize("window", [WINDOW_MIN_MS - 1, WINDOW_MAX_MS + 1, 0, "5000", True])
def test_refuses_a_window_out_of_bounds(window):
    with pytest.raises(EncodingError, match="window"):
        SignedIntent.from_dict(_offer_intent(window))


def test_a_bid_above_the_price_is_refused_without_a_window():
    with pytest.raises(VerificationError, match="price"):
        check_take_terms(_hold(), _take(28, 30))


def test_a_bid_above_the_price_is_a_take_of_an_offer_with_a_window():
    windowed = Hold("offer", 1, USD, 70, _hold().get, filled=30, min_fill=10, window=5_000)
    assert check_take_terms(windowed, _take(40, 30)) == "fill"
    assert check_take_terms(windowed, _take(70, 70)) == "settle"
    with pytest.raises(VerificationError, match="price"):
        check_take_terms(windowed, _take(26, 30))  # under the price, window or not
    assert fill_effects(windowed, 30, 40)[1].balance == 40  # the maker gets what was bid


def test_a_hold_with_a_window_keeps_it_and_one_without_keeps_its_bytes():
    plain = _hold()
    assert "window" not in plain.to_dict()
    windowed = Hold("offer", 1, USD, 70, plain.get, window=5_000)
    assert Hold.from_bytes(windowed.to_bytes()) == windowed


# --- the verifier -------------------------------------------------------------------------------


@pytest.fixture
def windowed(tmp_path):
    """Alice's offer at bank 1 (100 USD for 90 EUR, parts of 10 or more, a 5 s window)."""
    clock = Clock()
    b1 = NetBank(tmp_path / "b1", B1, clock)
    alice = b1.join("alice")
    b1.deposit(alice, 1000)
    offer = b1.submit(alice, "offer", {
        "sell": {"asset": USD, "amount": "100"}, "buy": {"asset": EUR, "amount": "90"},
        "expires": clock.now + 60_000, "min_fill": "10", "window": 5_000}).outcome.entries[0]
    with b1.ledger.store.read() as r:
        entries = [SignedEntry.from_bytes(e) for e in r.entries(alice.chain, 0, 100)]
    return b1, offer, entries


def _verify(b1, entries):
    return verify_chain(entries, b1.key.public_key, B1, entries[0].id)


def test_the_window_runs_from_the_offers_entry(windowed):
    _b1, offer, _entries = windowed
    assert window_closes(offer) == offer.time + 5_000
    assert bid_of(_take_entry(_b1, offer, 40, 30), 7).gives == 40


def test_a_fill_of_a_bid_brings_in_what_the_take_gave(windowed):
    b1, offer, entries = windowed
    take = _take_entry(b1, offer, 40, 30)  # the price of 30 is 27: it bids 40
    state = _verify(b1, [*entries, _forged_fill(b1, entries[-1], take, 30, 40)])
    assert state.balances[EUR].balance == 40 and state.holds[offer.id].amount == 70


def test_refuses_a_fill_of_a_bid_that_brings_in_only_the_price(windowed):
    """The maker's bank may not keep the difference: the maker gets what the taker gave."""
    b1, offer, entries = windowed
    take = _take_entry(b1, offer, 40, 30)
    with pytest.raises(VerificationError, match="effects"):
        _verify(b1, [*entries, _forged_fill(b1, entries[-1], take, 30, 27)])


def test_a_settle_of_a_bid_for_all_of_it_brings_in_what_it_gave(windowed):
    b1, offer, entries = windowed
    take = _take_entry(b1, offer, 95, 100)
    fill = _forged_fill(b1, entries[-1], take, 100, 95)
    settle = dict(fill.doc["entry"], kind="settle")
    state = _verify(b1, [*entries, sign_entry_as(b1.key, settle)])
    assert state.balances[EUR].balance == 95 and offer.id not in state.holds
    low = dict(settle, effects=[settle["effects"][0], dict(settle["effects"][1], balance="90")])
    with pytest.raises(VerificationError, match="effects"):
        _verify(b1, [*entries, sign_entry_as(b1.key, low)])
