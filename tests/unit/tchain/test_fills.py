"""Partial fills in the core (docs/adr/0007-partial-fills.md): the price of a fill, the terms a
take must have against what remains of an offer, and the offline verifier's refusal of fills
a bank could forge."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tchain.errors import VerificationError
from tchain.intents import sign_intent
from tchain.keys import SigningKey
from tchain.model import SignedEntry, TakeBody, Terms, fill_price
from tchain.state import Hold, check_take_terms, fill_effects
from tchain.values import UAI
from tchain.verify import verify_chain
from tests.helpers import Clock, sign_entry_as
from tests.interbank_net import NetBank

B1 = "bank1.example"
USD, EUR = f"{B1}:USD", f"{B1}:EUR"

amounts = st.integers(min_value=1, max_value=10**30)


# --- the price of a fill ----------------------------------------------------------------------

@given(sells=amounts, buys=amounts, data=st.data())
def test_the_maker_never_receives_less_than_its_rate_rounded_up(sells, buys, data):
    n = data.draw(st.integers(min_value=1, max_value=sells))
    price = fill_price(sells, buys, n)
    exact = Fraction(n * buys, sells)
    assert exact <= price < exact + 1  # its rate, rounded up: never less, at most one unit more
    if n == sells:
        assert price == buys  # the whole offer costs exactly what it asks


@given(sells=st.integers(min_value=2, max_value=10**12), buys=amounts, data=st.data())
def test_fills_that_take_it_all_pay_at_least_the_offers_price(sells, buys, data):
    """However an offer is cut into parts (at most 20, the last all that is left), the maker
    gives exactly what it held and receives no less than its price for all of it."""
    left, paid, given_out, parts = sells, 0, 0, 0
    while left:
        parts += 1
        n = left if parts == 20 else data.draw(st.integers(min_value=1, max_value=left))
        hold = Hold("offer", 1, USD, left, Terms(UAI.parse(EUR), buys), filled=sells - left,
                    min_fill=1)
        take = TakeBody("ab" * 32, B1, Terms(UAI.parse(EUR), hold.price(n)),
                        Terms(UAI.parse(USD), n))
        kind = check_take_terms(hold, take)
        assert kind == ("settle" if n == left else "fill")
        sold, bought = fill_effects(hold, n)
        assert -sold.balance == n <= hold.amount  # never more than the hold has
        paid += bought.balance
        given_out += n
        left -= n
    assert given_out == sells
    assert paid >= buys


def _hold(left: int = 70, min_fill: int | None = 10) -> Hold:
    return Hold("offer", 1, USD, left, Terms(UAI.parse(EUR), 90), filled=100 - left,
                min_fill=min_fill)


def _take(gives: int, gets: int, sells: str = EUR, buys: str = USD) -> TakeBody:
    return TakeBody("ab" * 32, B1, Terms(UAI.parse(sells), gives), Terms(UAI.parse(buys), gets))


@pytest.mark.parametrize(("take", "hold", "why"), [
    (_take(27, 30), _hold(20), "left"),                   # more than remains
    (_take(26, 30), _hold(), "price"),                     # 26 < ceil(30 * 90 / 100) = 27
    (_take(28, 30), _hold(), "price"),                     # more than the price is not it either
    (_take(5, 5), _hold(), "min_fill"),                    # a part below min_fill, not the rest
    (_take(27, 30), _hold(100, None), "whole"),            # a part of a whole-only offer
    (_take(27, 30, sells=USD, buys=EUR), _hold(), "mirror"),
])
def test_take_terms_the_offer_refuses(take, hold, why):
    with pytest.raises(VerificationError):
        check_take_terms(hold, take)


def test_a_part_below_min_fill_is_taken_when_it_is_all_that_remains():
    assert check_take_terms(_hold(5), _take(5, 5)) == "settle"  # ceil(5 * 90 / 100) = 5


# --- the verifier refuses forged fills ---------------------------------------------------------

@pytest.fixture
def maker(tmp_path):
    """Alice's offer (100 USD for 90 EUR, parts of 10 or more) at bank 1, filled once by carol
    (30 for 27): bank 1 and the entries of alice's chain, and carol's take."""
    clock = Clock()
    b1 = NetBank(tmp_path / "b1", B1, clock)
    alice, carol = b1.join("alice"), b1.join("carol")
    b1.deposit(alice, 1000)
    b1.deposit(carol, 1000, "EUR")
    offer = b1.submit(alice, "offer", {
        "sell": {"asset": USD, "amount": "100"}, "buy": {"asset": EUR, "amount": "90"},
        "expires": clock.now + 60_000, "min_fill": "10"}).outcome.entries[0]
    done = b1.submit(carol, "take", {"offer": offer.id, "validator": B1,
                                     "sell": {"asset": EUR, "amount": "27"},
                                     "buy": {"asset": USD, "amount": "30"}})
    take, fill, _settle = done.outcome.entries
    assert fill.kind == "fill"
    with b1.ledger.store.read() as r:
        entries = [SignedEntry.from_bytes(e) for e in r.entries(alice.chain, 0, 100)]
    return b1, alice, offer, entries, take


def _forged_fill(b1, after: SignedEntry, take: SignedEntry, gives: int, gets: int
                 ) -> SignedEntry:
    return sign_entry_as(b1.key, {
        "chain": after.chain_id, "height": after.height + 1, "prev": after.id,
        "time": after.time + 1, "kind": "fill", "intent": None,
        "effects": [{"asset": USD, "balance": str(-gives), "held": str(-gives)},
                    {"asset": EUR, "balance": str(gets), "held": "0"}],
        "evidence": [take.doc], "validator": b1.key.public_key})


def _take_entry(b1, offer: SignedEntry, gives: int, gets: int) -> SignedEntry:
    """A take of ``offer`` by a customer made up for it, signed by bank 1."""
    taker = SigningKey.generate()
    chain = SigningKey.generate().public_key
    intent = sign_intent(taker, "take", chain, 1, offer.time, {
        "offer": offer.id, "validator": B1, "sell": {"asset": EUR, "amount": str(gives)},
        "buy": {"asset": USD, "amount": str(gets)}})
    return sign_entry_as(b1.key, {
        "chain": chain, "height": 1, "prev": "11" * 32, "time": offer.time, "kind": "take",
        "intent": intent, "effects": [{"asset": EUR, "balance": "0", "held": str(gives)}],
        "evidence": [], "validator": b1.key.public_key})


def _verify(b1, entries):
    return verify_chain(entries, b1.key.public_key, B1, entries[0].id)


def test_the_honest_fill_verifies_and_leaves_the_rest_held(maker):
    b1, _alice, offer, entries, _take = maker
    state = _verify(b1, entries)
    assert state.balances[USD].balance == 970 and state.balances[USD].held == 70
    assert state.balances[EUR].balance == 27
    assert state.holds[offer.id].amount == 70


def test_refuses_a_fill_that_gives_more_than_the_remainder(maker):
    b1, _alice, offer, entries, _take = maker
    take = _take_entry(b1, offer, 72, 80)  # 80 of the 70 left, at its price
    with pytest.raises(VerificationError, match="left"):
        _verify(b1, [*entries, _forged_fill(b1, entries[-1], take, 80, 72)])


def test_refuses_a_fill_that_takes_in_less_than_the_price(maker):
    b1, _alice, offer, entries, _take = maker
    take = _take_entry(b1, offer, 17, 20)  # 20 cost 18
    with pytest.raises(VerificationError, match="price"):
        _verify(b1, [*entries, _forged_fill(b1, entries[-1], take, 20, 17)])


def test_refuses_a_fill_whose_effects_pay_less_than_its_take(maker):
    b1, _alice, offer, entries, _take = maker
    take = _take_entry(b1, offer, 18, 20)
    with pytest.raises(VerificationError, match="effects"):
        _verify(b1, [*entries, _forged_fill(b1, entries[-1], take, 20, 17)])


def test_refuses_a_fill_of_a_closed_offer(maker):
    b1, alice, offer, entries, _take = maker
    cancel = b1.submit(alice, "cancel", {"offer": offer.id}).outcome.entries[0]
    take = _take_entry(b1, offer, 18, 20)
    with pytest.raises(VerificationError, match="not open"):
        _verify(b1, [*entries, cancel, _forged_fill(b1, cancel, take, 20, 18)])


def test_refuses_one_take_answered_by_two_fills(maker):
    b1, _alice, _offer, entries, take = maker
    with pytest.raises(VerificationError, match="answered already"):
        _verify(b1, [*entries, _forged_fill(b1, entries[-1], take, 30, 27)])


def test_refuses_a_settle_where_a_part_was_taken(maker):
    """A take of less than remains is answered by a fill, never by a settle that would close
    (and so release) the rest."""
    b1, _alice, offer, entries, _take = maker
    take = _take_entry(b1, offer, 18, 20)
    forged = _forged_fill(b1, entries[-1], take, 20, 18)
    doc = dict(forged.doc["entry"], kind="settle")
    with pytest.raises(VerificationError, match=r"effects|fill"):
        _verify(b1, [*entries, sign_entry_as(b1.key, doc)])
