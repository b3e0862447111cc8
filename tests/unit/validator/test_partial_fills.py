"""Partial fills through the engine, on in-process banks (docs/adr/0007-partial-fills.md):
across two banks, between two customers of one bank, min_fill, and takes racing for what
remains. After each: every chain verifies, every asset sums to zero, no hold is left open and
each bank's audit is clean."""

from __future__ import annotations

import pytest

from tchain.encoding import parse
from tchain.errors import TChainError, VerificationError
from tchain.intents import sign_intent
from tchain.messages import Message, sign_message
from tchain.model import SignedEntry
from tchain.proofs import verify_proof
from tchain.records import make_record
from tests.helpers import Clock, sign_entry_as
from tests.interbank_net import Net, NetBank, all_sound, pin, two_banks

B1, B2 = "bank1.example", "bank2.example"
USD, EUR = f"{B1}:USD", f"{B2}:EUR"


@pytest.fixture
def world(tmp_path):
    return two_banks(tmp_path)


def offer_of(bank: NetBank, maker, clock, *, sell=(USD, 100), buy=(EUR, 90), min_fill=10):
    body = {"sell": {"asset": sell[0], "amount": str(sell[1])},
            "buy": {"asset": buy[0], "amount": str(buy[1])}, "expires": clock.now + 60_000}
    if min_fill is not None:
        body["min_fill"] = str(min_fill)
    return bank.submit(maker, "offer", body).outcome.entries[0]


def take_part(bank: NetBank, taker, offer, gets: int, pays: int, *, maker_bank=B1,
              sells=EUR, buys=USD):
    return bank.submit(taker, "take", {"offer": offer.id, "validator": maker_bank,
                                       "sell": {"asset": sells, "amount": str(pays)},
                                       "buy": {"asset": buys, "amount": str(gets)}})


def listed(bank: NetBank, offer) -> str | None:
    found = [o for o in bank.interbank.offers(None) if o["id"] == offer.id]
    return found[0]["remaining"] if found else None


def parted(world, min_fill: int | None = 10):
    """Alice's offer at bank 1 (100 USD for 90 EUR, parts of ``min_fill``), known at bank 2,
    and bob at bank 2 with 2000 EUR."""
    clock, b1, b2, net = world
    alice, bob = b1.join("alice"), b2.join("bob")
    b1.deposit(alice, 1000)
    b2.deposit(bob, 2000, "EUR")
    offer = offer_of(b1, alice, clock, min_fill=min_fill)
    net.run()
    return alice, bob, offer


def test_two_fills_across_two_banks_then_cancel_releases_only_the_rest(world):
    _clock, b1, b2, net = world
    alice, bob, offer = parted(world)
    assert listed(b2, offer) == "100"
    take_part(b2, bob, offer, 30, 27)  # 30 * 90 / 100 = 27
    net.run()
    assert b1.balance(alice, USD) == (970, 70)
    assert b1.balance(alice, EUR) == (27, 0)
    assert b2.balance(bob, USD) == (30, 0) and b2.balance(bob, EUR) == (1973, 0)
    assert listed(b1, offer) == listed(b2, offer) == "70"
    take_part(b2, bob, offer, 25, 23)  # 22.5, rounded up in the maker's favour
    net.run()
    assert b1.balance(alice, USD) == (945, 45)
    assert b1.balance(alice, EUR) == (50, 0)
    assert listed(b2, offer) == "45"
    cancel = b1.submit(alice, "cancel", {"offer": offer.id}).outcome.entries[0]
    assert cancel.effects[0].held == -45  # only what remains
    net.run()
    assert b1.balance(alice, USD) == (945, 0)
    assert listed(b1, offer) is None and listed(b2, offer) is None
    assert b2.balance(bob, USD) == (55, 0) and b2.balance(bob, EUR) == (1950, 0)
    with b1.ledger.store.read() as r:
        assert r.position(B2, USD).held == 55 and r.position(B2, EUR).held == -50
    all_sound(b1, b2)


def test_the_last_part_settles_and_closes_the_offer(world):
    _clock, b1, b2, net = world
    alice, bob, offer = parted(world, 40)
    take_part(b2, bob, offer, 70, 63)
    net.run()
    take_part(b2, bob, offer, 30, 27)  # below min_fill, but all that remains
    net.run()
    assert b1.balance(alice, USD) == (900, 0) and b1.balance(alice, EUR) == (90, 0)
    assert listed(b2, offer) is None
    all_sound(b1, b2)


def test_a_whole_take_is_the_take_of_before(world):
    """No min_fill: the offer is whole only, and a take of all of it is the mirror."""
    _clock, b1, b2, net = world
    alice, bob, offer = parted(world, None)
    assert "min_fill" not in offer.intent.doc["intent"]["body"]
    with pytest.raises(TChainError) as refused:
        take_part(b2, bob, offer, 50, 45)
    assert refused.value.code == "bad_request"
    take_part(b2, bob, offer, 100, 90)
    net.run()
    assert b1.balance(alice, EUR) == (90, 0)
    all_sound(b1, b2)


def test_a_partial_fill_between_two_customers_of_one_bank(tmp_path):
    clock, b1, _b2, _net = two_banks(tmp_path)
    alice, carol = b1.join("alice"), b1.join("carol")
    b1.deposit(alice, 1000)
    b1.deposit(carol, 1000, "EUR")
    eur = f"{B1}:EUR"
    offer = offer_of(b1, alice, clock, buy=(eur, 90))
    done = take_part(b1, carol, offer, 40, 36, sells=eur)
    assert [e.kind for e in done.outcome.entries] == ["take", "fill", "settle"]
    assert b1.balance(alice, USD) == (960, 60) and b1.balance(alice, eur) == (36, 0)
    assert b1.balance(carol, USD) == (40, 0) and b1.balance(carol, eur) == (964, 0)
    assert listed(b1, offer) == "60"
    with pytest.raises(TChainError) as refused:
        take_part(b1, carol, offer, 61, 55, sells=eur)
    assert (refused.value.code, refused.value.detail) == ("offer_closed", {"remaining": "60"})
    done = take_part(b1, carol, offer, 60, 54, sells=eur)
    assert [e.kind for e in done.outcome.entries] == ["take", "settle", "settle"]
    assert b1.balance(alice, USD) == (900, 0) and b1.balance(alice, eur) == (90, 0)
    assert listed(b1, offer) is None
    all_sound(b1)


@pytest.mark.parametrize("here", [True, False])
def test_a_take_below_min_fill_is_refused(world, here):
    clock, b1, b2, net = world
    alice = b1.join("alice")
    b1.deposit(alice, 1000)
    bank = b1 if here else b2
    eur = f"{bank.name}:EUR"
    taker = bank.join("taker")
    bank.deposit(taker, 1000, "EUR")
    offer = offer_of(b1, alice, clock, buy=(eur, 90))
    net.run()
    with pytest.raises(TChainError) as refused:
        take_part(bank, taker, offer, 9, 9, sells=eur)
    assert refused.value.code == "bad_request"
    assert "min_fill" in refused.value.message
    net.run()
    assert b1.balance(alice, USD) == (1000, 100)
    b1.submit(alice, "cancel", {"offer": offer.id})
    net.run()
    all_sound(b1, b2)


def test_racing_parts_fill_only_what_remains_and_the_rest_are_released(world):
    _clock, b1, b2, net = world
    alice, _bob, offer = parted(world)
    takers = [b2.join(f"taker{i}") for i in range(3)]
    for t in takers:
        b2.deposit(t, 1000, "EUR")
    # all three take 40 before any of them reaches bank 1: 120 of 100
    for t in takers:
        take_part(b2, t, offer, 40, 36)
    net.run()
    got = sorted(b2.balance(t, USD)[0] for t in takers)
    assert got == [0, 40, 40]
    assert sorted(b2.balance(t, EUR) for t in takers) == [(964, 0), (964, 0), (1000, 0)]
    assert b1.balance(alice, USD) == (920, 20) and b1.balance(alice, EUR) == (72, 0)
    assert listed(b2, offer) == "20"
    with b2.ledger.store.read() as r:
        states = sorted(f["state"] for _, f in r.records("flows"))
    assert states == ["released", "settled", "settled"]
    [left_out] = [t for t in takers if b2.balance(t, USD) == (0, 0)]
    take_part(b2, left_out, offer, 20, 18)
    net.run()
    assert b1.balance(alice, USD) == (900, 0)
    all_sound(b1, b2)


def test_a_peer_that_claims_a_part_at_less_than_the_price_is_misconduct(world):
    """Bank 2's own key signs a take its honest rules would have refused: 30 for 20."""
    clock, b1, b2, _net = world
    alice, _bob, offer = parted(world)
    mallory = b2.join("mallory")
    for gets, pays, how in ((30, 20, "proven"), (5, 5, "attested"), (101, 91, "proven")):
        intent = sign_intent(mallory.key, "take", mallory.chain, 1, clock.now, {
            "offer": offer.id, "validator": B1, "sell": {"asset": EUR, "amount": str(pays)},
            "buy": {"asset": USD, "amount": str(gets)}})
        take = sign_entry_as(b2.key, {
            "chain": mallory.chain, "height": 1, "prev": mallory.chain, "time": clock.now,
            "kind": "take", "intent": intent,
            "effects": [{"asset": EUR, "balance": "0", "held": str(pays)}], "evidence": [],
            "validator": b2.key.public_key})
        record = make_record(b2.key, address=f"mallory*{B2}", owner=mallory.key.public_key,
                             chain=mallory.chain, validator=B2)
        message = sign_message(b2.key, "take", B2, B1, clock.now, take=take.doc,
                               taker=record, deadline=clock.now + 10_000)
        answer = parse(b1.interbank.receive(message, b2.key.public_key))["message"]
        assert (answer["type"], answer["error"]) == ("refused", "bad_request"), answer
        with b1.ledger.store.read() as r:
            proof = r.record("proofs", Message.from_dict(message).id)
        summary = verify_proof(proof)
        assert summary.culprit == b2.key.public_key and how in summary.summary
    assert b1.balance(alice, USD) == (1000, 100)  # nothing moved


def test_an_offer_filled_in_part_expires_releasing_only_the_rest(world):
    clock, b1, b2, net = world
    alice, bob, offer = parted(world)
    take_part(b2, bob, offer, 30, 27)
    net.run()
    clock.now += 61_000  # past the offer's expiry: bank 1 releases what remains
    net.run()
    assert b1.balance(alice, USD) == (970, 0) and b1.balance(alice, EUR) == (27, 0)
    assert listed(b2, offer) is None
    all_sound(b1, b2)


def test_a_fill_the_taker_bank_never_settles_leaves_a_proof(tmp_path):
    """The non-settlement proof of a part: the maker's fill, its take and the deadline."""
    clock = Clock()
    b1 = NetBank(tmp_path / "b1", B1, clock)
    b2 = NetBank(tmp_path / "b2", B2, clock, fault="skip-settle")
    pin(b1, b2)
    alice, bob, offer = parted((clock, b1, b2, Net(b1, b2)))
    net = Net(b1, b2)
    take_part(b2, bob, offer, 30, 27)
    net.run()
    assert b1.balance(alice, EUR) == (27, 0) and b2.balance(bob, EUR) == (2000, 27)
    clock.now += 11_000
    net.run()
    [proof] = b1.interbank.proofs()
    assert SignedEntry.from_dict(proof["settlement"]).kind == "fill"
    assert verify_proof(proof).culprit == b2.key.public_key


def test_no_misconduct_proof_verifies_of_a_take_the_offer_allows(world):
    """A reporter cannot accuse a peer of a take on the offer's terms, nor of one asking more
    than remained (the peer may not have heard of a fill): such proofs do not verify."""
    clock, b1, b2, _net = world
    _alice, bob, offer = parted(world)
    take = take_part(b2, bob, offer, 30, 27).outcome.entries[0]
    record = make_record(b2.key, address=f"bob*{B2}", owner=bob.key.public_key,
                         chain=bob.chain, validator=B2)
    message = sign_message(b2.key, "take", B2, B1, clock.now, take=take.doc, taker=record,
                           deadline=clock.now + 10_000)
    for remaining, why in (("100", "agree"), ("20", "more than remained")):
        proof = {"type": "misconduct", "reporter": b1.key.public_key, "reporter_name": B1,
                 "culprit": b2.key.public_key, "error": "bad_request", "reason": "made up",
                 "detail": {"offer": offer.raw.decode(), "remaining": remaining},
                 "message": message, "time": clock.now}
        proof["sig"] = b1.key.sign("proof", proof)
        with pytest.raises(VerificationError, match=why):
            verify_proof(proof)
