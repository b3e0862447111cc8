"""Hypothesis properties: round trips, signatures that any changed byte breaks, and random
payment sequences that keep every asset summing to zero."""

from __future__ import annotations

import dataclasses
import itertools
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tchain.digest import digest
from tchain.encoding import MAX_SAFE_INTEGER, canonical, parse
from tchain.errors import SignatureError, TChainError
from tchain.keys import SigningKey, verify_digest
from tchain.model import Terms
from tchain.state import NOT_READ, Balance, ChainState, Hold, Holds
from tchain.values import UAI
from tests.helpers import BANK, USD, asset_totals, join, new_ledger
from validator.store import Store

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(0, MAX_SAFE_INTEGER) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=25,
)

KEY = SigningKey.generate()


@given(json_values)
def test_canonical_round_trip(value):
    encoded = canonical(value)
    assert parse(encoded) == value
    assert canonical(parse(encoded)) == encoded


@given(st.dictionaries(st.text(max_size=8), json_values, min_size=1, max_size=5),
       st.data())
def test_any_changed_byte_breaks_the_signature(doc, data):
    raw = canonical(doc)
    sig = KEY.sign_digest(digest("intent", doc))
    position = data.draw(st.integers(0, len(raw) - 1))
    flip = data.draw(st.integers(1, 255))
    changed = bytearray(raw)
    changed[position] ^= flip
    try:
        tampered = parse(bytes(changed))
    except TChainError:
        return  # no longer a document at all
    try:
        verify_digest(KEY.public_key, digest("intent", tampered), sig)
    except SignatureError:
        return
    # The only way the signature survives is if the change did not change the document.
    assert canonical(tampered) == raw


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(1, 400)),
                min_size=1, max_size=30))
def test_random_payments_keep_every_asset_at_zero_and_no_balance_negative(payments):
    with tempfile.TemporaryDirectory() as tmp:
        ledger = new_ledger(Path(tmp) / "l")
        people = [join(ledger, f"p{i}") for i in range(4)]
        for i in range(4):
            ledger.deposit(f"p{i}*{BANK}", USD, 500)
        for payer, payee, amount in payments:
            p = people[payer]
            try:
                ledger.submit(p.payment(people[payee], str(amount)))
                p.seq += 1
            except TChainError as e:
                assert e.code in ("insufficient_funds", "bad_request")
            assert asset_totals(ledger.store) == {USD: 0}
            for person in people:
                assert ledger.state(person.chain).balances[USD].available >= 0
        ledger.store.close()


_hex_ids = st.text("0123456789abcdef", min_size=64, max_size=64)
_assets = st.sampled_from([USD, "bank.example:EUR", "bänk.example:ÉUR"])
_amounts = st.integers(0, 10**30)
_holds = st.builds(Hold, st.sampled_from(["payment", "offer", "take"]), st.integers(0, 10**9),
                   _assets, _amounts,
                   st.none() | st.builds(Terms, st.sampled_from([UAI.parse(USD)]), _amounts))


def _states_of(text: st.SearchStrategy[str], assets: st.SearchStrategy[str]
               ) -> st.SearchStrategy[ChainState]:
    return st.builds(
        ChainState, chain=_hex_ids, owner=_hex_ids, name=text, address=text,
        height=st.integers(0, 10**9), head=_hex_ids, seq=st.integers(0, 10**9),
        kyc=st.booleans(), params=st.dictionaries(st.text(max_size=8), json_values, max_size=3),
        balances=st.dictionaries(assets, st.builds(Balance, _amounts, _amounts), max_size=3),
        spent_day=st.integers(0, 10**6), spent=st.dictionaries(assets, _amounts, max_size=3),
        holds=st.dictionaries(_hex_ids, _holds, max_size=6).map(lambda d: Holds(opened=d)))


# Any text and assets; and states as a bank writes them, ASCII names and UAIs (which
# arbitrary text seldom draws).
_states = _states_of(st.text(max_size=20), _assets)
_plain_states = _states_of(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7e),
                                   max_size=12),
                           st.sampled_from([USD, "bank.example:EUR", "alice*bank.example:PTS"]))


@given(_states | _plain_states)
def test_a_state_is_stored_as_the_canonical_bytes_of_its_dict_and_read_back_equal(state):
    # whatever the names and params; the holds are not in the bytes (the store keeps them
    # apart), and a state decoded from bytes alone refuses to guess them
    raw = state.to_bytes()
    assert raw == canonical(state.to_dict())
    assert b'"holds"' not in raw
    assert ChainState.from_dict(parse(raw)) == state.with_holds(NOT_READ)
    assert ChainState.from_bytes(bytes(raw)) == state.with_holds(NOT_READ)


_FRESH_CHAINS = itertools.count(1)


@pytest.fixture(scope="module")
def hold_store(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("holds"))
    yield store
    store.close()


@settings(max_examples=60, deadline=None)
@given(_plain_states, st.dictionaries(_hex_ids, _holds, max_size=8), st.data())
def test_holds_opened_and_closed_over_writes_are_read_back_as_they_are(hold_store, state, later,
                                                                      data):
    # Each write stores only what the state opened and closed since it was read; a state
    # read back (in a later transaction) has exactly the holds the overlays say are open.
    state = dataclasses.replace(state, chain=f"{next(_FRESH_CHAINS):064x}")  # nothing stored
    expected = dict(state.holds)
    hold_store.write(lambda w: w.put_state(state))
    with hold_store.read() as r:
        assert dict(r.state_with_holds(state.chain).holds) == expected
    to_close = data.draw(st.lists(st.sampled_from(sorted(expected)), unique=True)
                         if expected else st.just([]))
    # in one transaction: read, close some, open others one entry at a time, write each
    def work(w):
        current = w.state(state.chain)
        for hold_id in to_close:
            current = current.with_holds(current.holds.changed(hold_id, None))
            w.put_state(current)
        for hold_id, hold in later.items():
            current = current.with_holds(current.holds.changed(None, (hold_id, hold)))
            w.put_state(current)
    hold_store.write(work)
    for hold_id in to_close:
        expected.pop(hold_id)
    expected.update(later)
    with hold_store.read() as r:
        holds = r.state_with_holds(state.chain).holds
        assert dict(holds) == expected
        assert len(holds) == len(expected)
        assert all(holds.get(h) is None for h in to_close if h not in later)
