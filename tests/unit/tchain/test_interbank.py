"""Cross-bank flows between in-process banks: payments, offers, takes, deadlines, proofs."""

from __future__ import annotations

import pytest

from tchain.proofs import verify_proof
from tchain.verify import verify_chain
from tests.helpers import Clock
from tests.interbank_net import Net, NetBank, pin, totals

B1, B2 = "bank1.example", "bank2.example"
USD, EUR = f"{B1}:USD", f"{B2}:EUR"


@pytest.fixture
def world(tmp_path):
    clock = Clock()
    b1 = NetBank(tmp_path / "b1", B1, clock)
    b2 = NetBank(tmp_path / "b2", B2, clock)
    pin(b1, b2)
    return clock, b1, b2, Net(b1, b2)


def chain_ok(bank: NetBank, customer) -> None:
    with bank.ledger.store.read() as r:
        entries = r.entries(customer.chain, 0, 10**6)
    verify_chain(entries, bank.key.public_key, bank.name, customer.chain)


def test_cross_bank_payment_settles_on_both_ledgers(world):
    _clock, b1, b2, net = world
    alice, bob = b1.join("alice"), b2.join("bob")
    b1.deposit(alice, 1000)
    result = b1.submit(alice, "payment", {"to": bob.chain, "to_validator": B2, "asset": USD,
                                          "amount": "300"})
    assert b1.balance(alice, USD) == (1000, 300)  # held, not yet debited
    [message] = result.messages
    assert net.deliver(b1, message) == "settled"
    assert b1.balance(alice, USD) == (700, 0)
    assert b2.balance(bob, USD) == (300, 0)
    assert totals(b1, b2)[USD] == 0
    chain_ok(b1, alice)
    chain_ok(b2, bob)


def test_a_repeated_transfer_gets_the_same_answer_and_changes_nothing(world):
    _clock, b1, b2, _net = world
    alice, bob = b1.join("alice"), b2.join("bob")
    b1.deposit(alice, 1000)
    [message] = b1.submit(alice, "payment", {"to": bob.chain, "to_validator": B2,
                                             "asset": USD, "amount": "300"}).messages
    with b1.ledger.store.read() as r:
        doc = r.record("outbox", message)["message"]
    first = b2.interbank.receive(doc, b1.key.public_key)
    second = b2.interbank.receive(doc, b1.key.public_key)
    assert first == second
    assert b2.balance(bob, USD) == (300, 0)


def test_refused_transfer_releases_the_hold(world):
    _clock, b1, b2, net = world
    alice, _bob = b1.join("alice"), b2.join("bob")
    b1.deposit(alice, 1000)
    b1.submit(alice, "payment", {"to": alice.chain, "to_validator": B2, "asset": USD,
                                 "amount": "300"})  # no such chain at bank 2
    net.run()
    assert b1.balance(alice, USD) == (1000, 0)
    chain_ok(b1, alice)


def test_unreachable_peer_past_the_deadline_releases(world):
    clock, b1, b2, net = world
    alice, bob = b1.join("alice"), b2.join("bob")
    b1.deposit(alice, 1000)
    b2.up = False
    result = b1.submit(alice, "payment", {"to": bob.chain, "to_validator": B2, "asset": USD,
                                          "amount": "300"})
    net.run()
    assert b1.balance(alice, USD) == (1000, 300)
    clock.now += 13_000
    net.run()
    assert b1.balance(alice, USD) == (1000, 0)
    assert "did not answer" in b1.interbank.flow(result.outcome.entries[0].id)["reason"]
    b2.up = True
    net.run()
    assert b2.balance(bob, USD) == (0, 0)
    chain_ok(b1, alice)


def exchange_world(world):
    clock, b1, b2, net = world
    alice, bob = b1.join("alice"), b2.join("bob")
    b1.deposit(alice, 1000)
    b2.deposit(bob, 2000, "EUR")
    offer = b1.submit(alice, "offer", {
        "sell": {"asset": USD, "amount": "100"}, "buy": {"asset": EUR, "amount": "90"},
        "expires": clock.now + 60_000}).outcome.entries[0]
    net.run()
    assert [o["id"] for o in b2.interbank.offers(EUR)] == [offer.id]
    return alice, bob, offer


def take(bank, customer, offer, maker_bank=B1):
    return bank.submit(customer, "take", {
        "offer": offer.id, "validator": maker_bank,
        "sell": {"asset": EUR, "amount": "90"}, "buy": {"asset": USD, "amount": "100"}})


def test_two_bank_exchange_settles_both_sides(world):
    _clock, b1, b2, net = world
    alice, bob, offer = exchange_world(world)
    take(b2, bob, offer)
    net.run()
    assert b1.balance(alice, USD) == (900, 0)
    assert b1.balance(alice, EUR) == (90, 0)
    assert b2.balance(bob, EUR) == (1910, 0)
    assert b2.balance(bob, USD) == (100, 0)
    assert totals(b1, b2) == {USD: 0, EUR: 0}
    assert b1.interbank.offers(USD) == [] and b2.interbank.offers(USD) == []
    for bank, c in ((b1, alice), (b2, bob)):
        chain_ok(bank, c)


def test_racing_takers_one_wins_and_the_other_is_released(world):
    _clock, b1, b2, net = world
    _alice, bob, offer = exchange_world(world)
    carol = b2.join("carol")
    b2.deposit(carol, 500, "EUR")
    take(b2, bob, offer)
    take(b2, carol, offer)
    net.run()
    assert sorted([b2.balance(bob, USD)[0], b2.balance(carol, USD)[0]]) == [0, 100]
    assert b2.balance(carol, EUR)[1] == 0 and b2.balance(bob, EUR)[1] == 0
    assert totals(b1, b2) == {USD: 0, EUR: 0}


def test_non_settlement_leaves_a_proof(tmp_path):
    clock = Clock()
    b1 = NetBank(tmp_path / "b1", B1, clock)
    b2 = NetBank(tmp_path / "b2", B2, clock, fault="skip-settle")
    pin(b1, b2)
    net = Net(b1, b2)
    alice, bob, offer = exchange_world((clock, b1, b2, net))
    take(b2, bob, offer)
    net.run()
    assert b1.balance(alice, EUR) == (90, 0)   # bank 1 settled its side
    assert b2.balance(bob, EUR) == (2000, 90)  # bank 2 never did
    clock.now += 11_000
    net.run()
    [proof] = b1.interbank.proofs()
    summary = verify_proof(proof)
    assert summary.culprit == b2.key.public_key
    assert proof["answers"]  # bank 2's signed "pending" answers are in it
    tampered = dict(proof, deadline=proof["deadline"] + 1)
    with pytest.raises(Exception, match="signature"):
        verify_proof(tampered)


def test_cancel_and_expiry_release_the_offer_everywhere(world):
    clock, b1, b2, net = world
    alice, _bob, offer = exchange_world(world)
    b1.submit(alice, "cancel", {"offer": offer.id})
    net.run()
    assert b1.balance(alice, USD) == (1000, 0)
    assert b2.interbank.offers(EUR) == []
    second = b1.submit(alice, "offer", {
        "sell": {"asset": USD, "amount": "50"}, "buy": {"asset": EUR, "amount": "40"},
        "expires": clock.now + 5_000}).outcome.entries[0]
    net.run()
    assert [o["id"] for o in b2.interbank.offers(EUR)] == [second.id]
    clock.now += 6_000
    net.run()
    assert b1.balance(alice, USD) == (1000, 0)
    assert b2.interbank.offers(EUR) == []
    chain_ok(b1, alice)
