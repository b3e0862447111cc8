"""The audit's findings against a pinned peer, each an attack by bank 2's real key on a real
bank 1, which must credit nothing it should not, keep the evidence, and keep its books."""

from __future__ import annotations

import threading

import pytest

from cli.local import LocalBank
from tchain.clock import now_ms
from tchain.encoding import canonical, parse
from tchain.keys import SigningKey
from tchain.proofs import verify_proof
from tests.fault_proxy import FaultProxy
from tests.helpers import decision
from tests.hostile.conftest import B1, B2
from tests.hostile.harness import HostilePeer, audit_clean, books_balance, open_offer
from tests.realbanks import balance, eventually, read, register, snapshot_from, submit
from validator.operator import deposit
from validator.peers import add_peer

USD, EUR1, EUR2 = f"{B1}:USD", f"{B1}:EUR", f"{B2}:EUR"


def proofs_of(bank) -> list[dict]:
    return read(bank, lambda r: [p for _, p in r.records("proofs")])


@pytest.mark.parametrize(("asset", "code"), [
    (USD, "position_exceeded"),             # bank 1's own IOU, never sent to bank 2
    ("bank3.example:USD", "foreign_asset"),  # a third bank's, which bank 2 never received
    ("unpinned.example:GOLD", "foreign_asset"),  # a bank nobody pins
])
def test_a_forged_hold_of_value_the_peer_never_had_credits_nothing(pair, liar, asset, code):
    b1, _b2 = pair
    alice = register(b1, f"alice-{code[:4]}-{asset[:4]}".lower())
    before = read(b1, snapshot_from)
    proofs = len(proofs_of(b1))
    hold, payer = liar.forged_hold(alice.chain, asset, 1_000_000)
    answer = liar.answer_of(liar.transfer(hold, payer))
    assert (answer["type"], answer["error"]) == ("refused", code)
    assert read(b1, snapshot_from) == before
    kept = proofs_of(b1)
    assert len(kept) == proofs + 1
    assert verify_proof(kept[-1]).culprit == liar.key.public_key


def test_a_hold_whose_payer_signature_is_zeros_credits_nothing(pair, liar):
    b1, _b2 = pair
    alice = register(b1, "alice-zeros")
    before = read(b1, snapshot_from)
    hold, payer = liar.forged_hold(alice.chain, EUR2, 500, intent_sig="00" * 64)
    answer = liar.answer_of(liar.transfer(hold, payer))
    assert (answer["type"], answer["error"]) == ("refused", "bad_signature")
    assert read(b1, snapshot_from) == before


def test_a_forged_take_paying_in_our_own_eur_is_refused(pair, liar):
    b1, _b2 = pair
    _, offer = open_offer(b1, "maker", (USD, "100"), (EUR1, "90"))
    before = read(b1, snapshot_from)
    answer = liar.answer_of(liar.forged_take(offer, {"asset": EUR1, "amount": "90"},
                                             {"asset": USD, "amount": "100"}))
    assert (answer["type"], answer["error"]) == ("refused", "position_exceeded")
    assert read(b1, snapshot_from) == before
    assert read(b1, lambda r: r.state(offer.chain).balances[USD].held) == 100  # still open


def test_one_hold_in_many_messages_is_credited_once(pair, liar):
    """A real hold, from bank 2's real ledger, re-wrapped in new transfer messages (new
    times, so new ids): one after the other, in a batch, and from threads at once."""
    b1, b2 = pair
    alice, bob = register(b1, "alice-once"), register(b2, "bob-once")
    deposit(b2.config, "bob-once", "1000", "EUR")
    r = submit(b2, bob, "payment", {"to": alice.chain, "to_validator": B1, "asset": EUR2,
                                    "amount": "250"})
    assert r.status_code == 201 and r.json()["flow"]["state"] == "settled", r.text
    assert balance(b1, alice, EUR2) == (250, 0)
    hold = r.json()["entries"][0]
    payer = liar.record(bob.chain, bob.key.public_key, "bob-once")
    first = liar.post(liar.transfer(hold, payer)).content
    assert parse(first)["message"]["type"] == "credited"
    answers = [liar.post(liar.transfer(hold, payer, time=now_ms() + i)).content
               for i in range(1, 4)]
    batch = liar.post({"messages": [liar.transfer(hold, payer, time=now_ms() + i)
                                    for i in range(10, 15)]}, "/v1/peer/messages/batch")
    assert batch.status_code == 200, batch.text
    racing: list[bytes] = []
    threads = [threading.Thread(target=lambda i=i: racing.append(liar.post(
        liar.transfer(hold, payer, time=now_ms() + 100 + i)).content)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {repr(decision(a)) for a in answers + racing} == {repr(decision(first))}
    assert all(decision(first) == decision(canonical(a))
               for a in parse(batch.content)["answers"])
    assert balance(b1, alice, EUR2) == (250, 0)


def test_answers_posted_as_requests_and_settlements_of_strangers_change_nothing(pair, liar):
    b1, _b2 = pair
    before = read(b1, snapshot_from)
    stranger = liar.entry(chain=SigningKey.generate().public_key, kind="settle", intent=None,
                          effects=[{"asset": USD, "balance": "-5", "held": "-5"}])
    for doc in (
        liar.sign("credited", ref="ab" * 32, credit=stranger.doc),
        liar.sign("take_accepted", ref="ab" * 32, settlement=stranger.doc,
                  deadline=now_ms()),
        liar.sign("settle", settlement=stranger.doc),
    ):
        response = liar.post(doc)
        assert response.status_code in (200, 400), response.text
        if response.status_code == 200:
            assert parse(response.content)["message"]["type"] == "refused"
        else:
            assert response.json()["error"] == "bad_request"
    assert read(b1, snapshot_from) == before


def test_a_peer_s_honest_round_trip_keeps_both_books(pair):
    """Bank 1 pays bank 2 in its USD, bank 2's customer pays part of it back, both banks'
    books balance and their positions mirror each other."""
    b1, b2 = pair
    carol, dan = register(b1, "carol-rt"), register(b2, "dan-rt")
    deposit(b1.config, "carol-rt", "1000", "USD")
    assert submit(b1, carol, "payment", {"to": dan.chain, "to_validator": B2, "asset": USD,
                                         "amount": "400"}).status_code == 201
    eventually(lambda: balance(b2, dan, USD) == (400, 0))
    r = submit(b2, dan, "payment", {"to": carol.chain, "to_validator": B1, "asset": USD,
                                    "amount": "150"})
    assert r.status_code in (201, 202), r.text
    eventually(lambda: balance(b1, carol, USD) == (750, 0))
    books_balance(b1)
    books_balance(b2)
    mine = read(b1, lambda r: r.position(B2, USD))
    theirs = read(b2, lambda r: r.position(B1, USD))
    assert mine.held == -theirs.held >= 250


@pytest.mark.parametrize("where", ["the taker's own chain", "a chain nobody has"])
def test_a_settlement_on_another_chain_than_the_offer_s_settles_nothing(tmp_path, where):
    """Found by the fifth outside attacker: bank 1 settled its customer's take of bank 2's
    offer on any settle entry bank 2 signed with the right effects, whatever chain it named
    (the taker's own, or one that exists nowhere): a receipt that could exist in no ledger of
    bank 2, which bank 2 could then deny. The maker's settle is on the offer's chain."""
    proxy = FaultProxy()
    b1 = LocalBank(tmp_path / "b1", B1, assets=("USD",))
    b2 = LocalBank(tmp_path / "b2", B2, assets=("EUR",), public_url=proxy.url)
    proxy.start(b2.port)
    try:
        with b1, b2:
            add_peer(b1.config, proxy.url)
            add_peer(b2.config, b1.url)
            _, offer = open_offer(b2, "dan", (EUR2, "10"), (USD, "2"))
            eventually(lambda: read(b1, lambda r: r.record("offers", offer.id)) is not None)
            carol = register(b1, "carol")
            deposit(b1.config, "carol", "100", "USD")
            proxy.set(drop=1.0)  # the take waits: bank 2 does not hear of it
            r = submit(b1, carol, "take", {"offer": offer.id, "validator": B2,
                                           "sell": {"asset": USD, "amount": "2"},
                                           "buy": {"asset": EUR2, "amount": "10"}})
            assert r.status_code == 202, r.text
            take = r.json()["entries"][0]
            liar = HostilePeer(b2, b1)
            chain = carol.chain if where == "the taker's own chain" else \
                SigningKey.generate().public_key
            forged = liar.entry(chain=chain, kind="settle", intent=None, evidence=[take],
                                effects=[{"asset": EUR2, "balance": "-10", "held": "-10"},
                                         {"asset": USD, "balance": "2", "held": "0"}])
            answer = liar.answer_of(liar.sign("settle", settlement=forged.doc))
            assert answer["type"] == "refused", answer
            assert balance(b1, carol, USD) == (100, 2)  # still held, nothing settled
            proxy.heal()  # the true settlement, on dan's chain, comes through
            eventually(lambda: balance(b1, carol, EUR2) == (10, 0), timeout=60)
            books_balance(b1)
            audit_clean(b1)
    finally:
        proxy.close()
