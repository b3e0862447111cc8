"""A pinned peer is trusted to be a bank, not to be honest (docs/protocol.md §13).

Bank 2 here is the liar: the tests sign with its real key whatever a dishonest bank could send
bank 1 (holds of value it never had, intents nobody signed, one hold in many messages, takes
paid in bank 1's own IOU) and check that bank 1 credits nothing it should not, keeps the
evidence, and that its books (tchain.books) and its audit agree after every message.
"""

from __future__ import annotations

import os
import threading

import pytest

from tchain.books import Move, Position
from tchain.encoding import parse
from tchain.errors import BooksError, TChainError
from tchain.intents import sign_intent
from tchain.keys import SigningKey
from tchain.messages import sign_message
from tchain.model import SignedEntry
from tchain.proofs import verify_proof
from tchain.records import make_record
from tests.helpers import decision, sign_entry_as, snapshot
from tests.interbank_net import NetBank, totals, two_banks
from validator.audit import audit, rebuild_books
from validator.interbank.inbox import MAX_INTENT_AGE_MS

B1, B2 = "bank1.example", "bank2.example"
USD, EUR = f"{B1}:USD", f"{B2}:EUR"


@pytest.fixture
def world(tmp_path):
    return two_banks(tmp_path)


def books_sound(bank: NetBank) -> None:
    """The bank's audit is clean: every chain verifies, and the books it keeps are the books
    its entries give, each asset summing to zero with what the peers hold."""
    report = audit(bank.ledger)
    assert report.ok, report.problems


def paid_across(world, amount: int):
    """alice at bank 1 (1000 USD deposited) has paid bob at bank 2 ``amount`` USD, settled."""
    _clock, b1, b2, net = world
    alice, bob = b1.join("alice"), b2.join("bob")
    b1.deposit(alice, 1000)
    b1.submit(alice, "payment", {"to": bob.chain, "to_validator": B2, "asset": USD,
                                 "amount": str(amount)})
    net.run()
    return alice, bob


def forged_hold(liar: NetBank, payee: str, asset: str, amount: int, *, now: int,
                payer: SigningKey | None = None, held: int | None = None,
                intent_sig: str | None = None, chain: str | None = None, seq: int = 1,
                **entry_fields: object) -> tuple[SignedEntry, dict]:
    """A hold the liar signs for a customer of its own (made up, with a key it holds), and
    its key record of that customer: what a dishonest bank can always make."""
    payer = payer or SigningKey.generate()
    chain = chain or SigningKey.generate().public_key  # a chain id nobody registered
    intent = sign_intent(payer, "payment", chain, seq, now, {
        "to": payee, "to_validator": B1, "asset": asset, "amount": str(amount)})
    if intent_sig is not None:
        intent["sig"] = intent_sig
    entry = {"chain": chain, "height": 1, "prev": os.urandom(32).hex(), "time": now,
             "kind": "payment", "intent": intent, "evidence": [], "validator": liar.key.public_key,
             "effects": [{"asset": asset, "balance": "0",
                          "held": str(amount if held is None else held)}], **entry_fields}
    record = make_record(liar.key, address=f"mallory*{liar.name}", owner=payer.public_key,
                         chain=chain, validator=liar.name)
    return sign_entry_as(liar.key, entry), record


def transfer(liar: NetBank, hold: SignedEntry, record: dict, now: int) -> dict:
    return sign_message(liar.key, "transfer", liar.name, B1, now, hold=hold.doc, payer=record,
                        deadline=now + 10_000, kyc_required=False)


def receive(bank: NetBank, liar: NetBank, doc: dict) -> dict:
    return parse(bank.interbank.receive(doc, liar.key.public_key))["message"]


@pytest.mark.parametrize(("asset", "forged", "code", "shown"), [
    # bank 1's own IOU, which bank 1 never sent bank 2: only bank 1's books show it
    (USD, {}, "position_exceeded", "attested"),
    # IOUs of a third bank, of a bank nobody pins, of a third bank's customer
    ("bank3.example:USD", {}, "foreign_asset", "proven by the message"),
    ("nobody.example:GOLD", {}, "foreign_asset", "proven by the message"),
    ("carol*bank3.example:PTS", {}, "foreign_asset", "proven by the message"),
    # a payer intent nobody signed; a hold of less than its payment pays
    (EUR, {"intent_sig": "00" * 64}, "bad_signature", "does not verify"),
    (EUR, {"held": 1}, "bad_request", "does not hold exactly"),
])
def test_a_lying_hold_credits_nothing_and_is_kept_as_evidence(world, asset, forged, code,
                                                              shown):
    clock, b1, b2, _net = world
    alice = b1.join("alice")
    before = snapshot(b1.ledger.store)
    hold, record = forged_hold(b2, alice.chain, asset, 500, now=clock(), **forged)
    answer = receive(b1, b2, transfer(b2, hold, record, clock()))
    assert answer["type"] == "refused" and answer["error"] == code
    assert snapshot(b1.ledger.store) == before
    [proof] = b1.interbank.proofs()
    summary = verify_proof(proof)
    assert summary.culprit == b2.key.public_key and shown in summary.summary
    books_sound(b1)


def test_a_peer_pays_in_its_own_iou_freely_and_the_books_follow(world):
    clock, b1, b2, _net = world
    alice = b1.join("alice")
    hold, record = forged_hold(b2, alice.chain, EUR, 500, now=clock())
    assert receive(b1, b2, transfer(b2, hold, record, clock()))["type"] == "credited"
    assert b1.balance(alice, EUR) == (500, 0)
    with b1.ledger.store.read() as r:
        assert r.position(B2, EUR) == Position(held=-500)  # we hold 500 of bank 2's IOU
        assert r.total(EUR) == 500
    books_sound(b1)


def test_one_hold_is_credited_once_whatever_message_carries_it(world):
    """The same signed hold re-wrapped in three transfers (new times, so new ids), one after
    the other, through a batch, and from threads at once: one credit, the first answer."""
    clock, b1, b2, _net = world
    alice = b1.join("alice")
    hold, record = forged_hold(b2, alice.chain, EUR, 500, now=clock())
    first = b1.interbank.receive(transfer(b2, hold, record, clock()), b2.key.public_key)
    clock.now += 1
    again = b1.interbank.receive(transfer(b2, hold, record, clock()), b2.key.public_key)
    assert decision(again) == decision(first)
    docs = []
    for _ in range(3):
        clock.now += 1
        docs.append(transfer(b2, hold, record, clock()))
    assert [decision(a) for a in b1.interbank.receive_many(docs, b2.key.public_key)] == \
        [decision(first)] * 3
    answers: list[bytes] = []

    def send(doc: dict) -> None:
        answers.append(b1.interbank.receive(doc, b2.key.public_key))

    racing = []
    for _ in range(8):
        clock.now += 1
        racing.append(threading.Thread(target=send, args=(transfer(b2, hold, record,
                                                                   clock()),)))
    for t in racing:
        t.start()
    for t in racing:
        t.join()
    assert [decision(a) for a in answers] == [decision(first)] * 8
    assert b1.balance(alice, EUR) == (500, 0)
    books_sound(b1)


def test_a_peer_hands_back_our_iou_up_to_what_it_holds(world):
    _clock, b1, b2, net = world
    alice, bob = paid_across(world, 300)
    with b1.ledger.store.read() as r:
        assert r.position(B2, USD) == Position(held=300)
    b2.submit(bob, "payment", {"to": alice.chain, "to_validator": B1, "asset": USD,
                               "amount": "100"})
    net.run()
    assert b1.balance(alice, USD) == (800, 0) and b2.balance(bob, USD) == (200, 0)
    with b1.ledger.store.read() as r:
        assert r.position(B2, USD) == Position(held=200)
    assert totals(b1, b2)[USD] == 0
    books_sound(b1)
    books_sound(b2)


def test_a_peer_ahead_of_our_books_is_told_to_wait_not_accused(world):
    """Bank 2 credits bob and bob pays back at once, before bank 1 has heard bank 2's
    answer: bank 1's books do not show bank 2 holding it yet. That is a race, not a lie:
    refused as position_pending, and no proof."""
    _clock, b1, b2, net = world
    alice, bob = b1.join("alice"), b2.join("bob")
    b1.deposit(alice, 1000)
    b1.submit(alice, "payment", {"to": bob.chain, "to_validator": B2, "asset": USD,
                                 "amount": "300"})
    b1.loses_replies = False
    b2.loses_replies = True  # bank 2 credits; its answer never reaches bank 1
    net.run(rounds=1)
    b2.loses_replies = False
    assert b2.balance(bob, USD) == (300, 0)
    [message] = b2.submit(bob, "payment", {"to": alice.chain, "to_validator": B1,
                                           "asset": USD, "amount": "100"}).messages
    with b2.ledger.store.read() as r:
        doc = r.record("outbox", message)["message"]
    answer = parse(b1.interbank.receive(doc, b2.key.public_key))["message"]
    assert answer["type"] == "refused" and answer["error"] == "position_pending"
    assert b1.interbank.proofs() == []
    books_sound(b1)


def test_a_take_paid_in_our_own_iou_the_peer_never_received_is_refused(world):
    """Bank 1 issues EUR too; alice offers USD for bank 1's EUR; bank 2 forges a take that
    pays her in bank 1's EUR, which bank 1 never sent it."""
    clock, b1, b2, _net = world
    b1_eur = f"{B1}:EUR"
    alice = b1.join("alice")
    b1.deposit(alice, 1000)
    offer = b1.submit(alice, "offer", {"sell": {"asset": USD, "amount": "100"},
                                       "buy": {"asset": b1_eur, "amount": "90"},
                                       "expires": clock() + 60_000}).outcome.entries[0]
    taker = SigningKey.generate()
    chain = SigningKey.generate().public_key
    intent = sign_intent(taker, "take", chain, 1, clock(), {
        "offer": offer.id, "validator": B1, "sell": {"asset": b1_eur, "amount": "90"},
        "buy": {"asset": USD, "amount": "100"}})
    take = sign_entry_as(b2.key, {
        "chain": chain, "height": 1, "prev": os.urandom(32).hex(), "time": clock(), "kind": "take",
        "intent": intent, "evidence": [], "validator": b2.key.public_key,
        "effects": [{"asset": b1_eur, "balance": "0", "held": "90"}]})
    record = make_record(b2.key, address=f"mallory*{B2}", owner=taker.public_key,
                         chain=chain, validator=B2)
    before = snapshot(b1.ledger.store)
    answer = receive(b1, b2, sign_message(b2.key, "take", B2, B1, clock(), take=take.doc,
                                          taker=record, deadline=clock() + 10_000))
    assert answer["type"] == "refused" and answer["error"] == "position_exceeded"
    assert snapshot(b1.ledger.store) == before
    assert b1.balance(alice, USD) == (1000, 100)  # the offer is still open, still funded
    books_sound(b1)


def test_a_customer_cannot_send_a_third_bank_s_iou_across(world):
    _clock, b1, b2, _net = world
    alice, bob = b1.join("alice"), b2.join("bob")
    before = snapshot(b1.ledger.store)
    with pytest.raises(TChainError) as refused:
        b1.submit(alice, "payment", {"to": bob.chain, "to_validator": B2,
                                     "asset": "bank3.example:USD", "amount": "1"})
    assert refused.value.code == "foreign_asset"
    assert snapshot(b1.ledger.store) == before


def test_a_credit_to_another_chain_than_the_payee_is_not_settled(world):
    """Bank 2 answers our transfer with a credit to a chain of its own choosing: bank 1 does
    not settle on it; the hold stays open, waiting for a true answer."""
    clock, b1, b2, _net = world
    alice, bob = b1.join("alice"), b2.join("bob")
    b1.deposit(alice, 1000)
    [message] = b1.submit(alice, "payment", {"to": bob.chain, "to_validator": B2,
                                             "asset": USD, "amount": "300"}).messages
    with b1.ledger.store.read() as r:
        request = r.record("outbox", message)["message"]
    hold = request["message"]["hold"]
    credit = sign_entry_as(b2.key, {
        "chain": SigningKey.generate().public_key, "height": 1, "prev": os.urandom(32).hex(),
        "time": clock(), "kind": "credit", "intent": None, "evidence": [hold],
        "validator": b2.key.public_key,
        "effects": [{"asset": USD, "balance": "300", "held": "0"}]})
    lie = sign_message(b2.key, "credited", B2, B1, clock(), ref=message, credit=credit.doc)
    with pytest.raises(TChainError, match="not to the payee"):
        b1.interbank.apply_answer(message, lie)
    assert b1.balance(alice, USD) == (1000, 300)
    books_sound(b1)


def test_a_write_that_makes_money_is_refused_by_the_store(world):
    """Whatever the rules let through, the store refuses a write whose entries and position
    moves do not balance: here a credit with no position move behind it."""
    _clock, b1, _b2, _net = world
    alice = b1.join("alice")
    b1.deposit(alice, 1000)
    before = snapshot(b1.ledger.store)

    def mint(w):
        w.move(B2, Move(USD, held=5))  # says bank 2 holds 5 more, no entry says why

    with pytest.raises(BooksError, match="value made or lost"):
        b1.ledger.store.write(mint)
    assert snapshot(b1.ledger.store) == before


def test_refusals_are_forgotten_once_their_intent_is_too_old_but_credits_are_kept(world):
    """A refusal is kept until its intent could not be decided any more (attack 18), then let
    go: the same message after that is refused again, too old."""
    clock, b1, b2, _net = world
    alice = b1.join("alice")
    refused_hold, record = forged_hold(b2, alice.chain, USD, 500, now=clock())
    refused = transfer(b2, refused_hold, record, clock())
    credited_hold, record2 = forged_hold(b2, alice.chain, EUR, 5, now=clock())
    credited = transfer(b2, credited_hold, record2, clock())
    receive(b1, b2, refused)
    receive(b1, b2, credited)
    with b1.ledger.store.read() as r:
        assert r.count("inbox") == 2
    clock.now += 15 * 60_000
    b1.interbank.tick()
    with b1.ledger.store.read() as r:
        assert r.count("inbox") == 2  # kept while its intent may still be decided
    clock.now += MAX_INTENT_AGE_MS
    b1.interbank.tick()
    with b1.ledger.store.read() as r:
        assert r.count("inbox") == 1  # the credit's answer is kept: a repeat gets it again
        assert r.count("subjects") == 1 and r.count("timers") == 0
    assert receive(b1, b2, credited)["type"] == "credited"
    assert receive(b1, b2, refused)["error"] == "expired"
    assert b1.balance(alice, EUR) == (5, 0)


def test_evidence_kept_against_one_peer_is_bounded(world, monkeypatch):
    import validator.interbank.inbox

    monkeypatch.setattr(validator.interbank.inbox, "MAX_EVIDENCE", 3)
    clock, b1, b2, _net = world
    alice = b1.join("alice")
    for _ in range(6):
        clock.now += 1
        hold, record = forged_hold(b2, alice.chain, USD, 500, now=clock())
        assert receive(b1, b2, transfer(b2, hold, record, clock()))["type"] == "refused"
    assert len(b1.interbank.proofs()) == 3


def test_the_audit_finds_books_that_differ_from_the_entries(world):
    _clock, b1, _b2, _net = world
    _alice, _bob = paid_across(world, 300)
    books_sound(b1)

    def tamper(w):
        w.put_books({USD: -700}, [(B2, USD, Position(held=700))])

    b1.ledger.store.write(tamper)
    assert any("position with bank2.example" in p for p in audit(b1.ledger).problems)


def test_a_store_without_books_gets_them_rebuilt_from_its_entries(world):
    _clock, b1, b2, net = world
    alice, bob = paid_across(world, 300)
    b1.submit(alice, "payment", {"to": bob.chain, "to_validator": B2, "asset": USD,
                                 "amount": "50"})  # in flight

    def forget(w):
        w.put_books({}, [])
        w._txn.delete(b"books", db=w._dbs["meta"])

    b1.ledger.store.write(forget)
    assert not audit(b1.ledger).ok
    assert rebuild_books(b1.ledger) is True
    assert rebuild_books(b1.ledger) is False
    with b1.ledger.store.read() as r:
        assert r.position(B2, USD) == Position(held=300, outgoing=50)
    books_sound(b1)
    net.run()
    books_sound(b1)
    assert totals(b1, b2)[USD] == 0


def test_a_refused_hold_in_a_new_message_gets_the_refusal_again(world):
    """Answered is answered, refused too: the same hold re-wrapped gets the first refusal
    while it is kept, even once the peer would hold enough to be credited."""
    clock, b1, b2, net = world
    alice, bob = b1.join("alice"), b2.join("bob")
    hold, record = forged_hold(b2, alice.chain, USD, 100, now=clock())
    first = b1.interbank.receive(transfer(b2, hold, record, clock()), b2.key.public_key)
    assert parse(first)["message"]["error"] == "position_exceeded"
    b1.deposit(alice, 1000)
    b1.submit(alice, "payment", {"to": bob.chain, "to_validator": B2, "asset": USD,
                                 "amount": "300"})
    net.run()  # bank 2 now holds 300 of bank 1's USD
    clock.now += 1
    again = b1.interbank.receive(transfer(b2, hold, record, clock()), b2.key.public_key)
    assert decision(again) == decision(first)
    assert b1.balance(alice, USD) == (700, 0)
    books_sound(b1)


@pytest.mark.parametrize("kind", ["cancel", "payment", "offer", "take", "rotate_key",
                                  "release", "settle"])
def test_an_offer_closed_by_an_entry_that_carries_nothing_is_refused_not_a_crash(world, kind):
    """Found by the outside attacker: an offer_closed whose entry was a cancel with no
    intent answered 500 (an assert in the core)."""
    clock, b1, b2, _net = world
    entry = sign_entry_as(b2.key, {
        "chain": SigningKey.generate().public_key, "height": 5, "prev": "e" * 64,
        "time": clock(), "kind": kind, "intent": None, "effects": [], "evidence": [],
        "validator": b2.key.public_key})
    before = snapshot(b1.ledger.store)
    answer = receive(b1, b2, sign_message(b2.key, "offer_closed", B2, B1, clock(),
                                          offer="a" * 64, entry=entry.doc))
    assert answer["type"] == "refused" and answer["error"] == "bad_request"
    assert snapshot(b1.ledger.store) == before


@pytest.mark.parametrize("wrong", [{"height": 0}, {"prev": "0" * 64}, {"seq": 2},
                                   {"evidence": "a hold"}, {"chain": "alice's"}])
def test_a_hold_no_chain_could_hold_is_not_credited(world, wrong):
    """Found by the outside attacker: holds at height 0, after the zeros, carrying evidence,
    or on a chain registered at the payee's bank were credited."""
    clock, b1, b2, _net = world
    alice = b1.join("alice")
    if wrong.get("evidence"):
        real, _ = forged_hold(b2, alice.chain, EUR, 1, now=clock())
        wrong = {"evidence": [real.doc]}
    if wrong.get("chain"):
        wrong = {"chain": alice.chain}
    before = snapshot(b1.ledger.store)
    hold, record = forged_hold(b2, alice.chain, EUR, 500, now=clock(), **wrong)
    answer = receive(b1, b2, transfer(b2, hold, record, clock()))
    assert answer["type"] == "refused" and answer["error"] == "bad_request"
    assert snapshot(b1.ledger.store) == before


@pytest.mark.parametrize("offset", [86_400_000, 400 * 86_400_000, -3_600_000])
def test_a_hold_whose_intent_is_dated_outside_its_time_window_is_misconduct(world, offset):
    """Attack 19, Finding 2: holds whose customer's intent was dated a day, or 400 days,
    after the hold were credited; no bank takes an intent outside its time window."""
    clock, b1, b2, _net = world
    alice = b1.join("alice")
    hold, record = forged_hold(b2, alice.chain, EUR, 7, now=clock() + offset,
                               time=clock())  # (the entry dated now, its intent not)
    answer = receive(b1, b2, transfer(b2, hold, record, clock()))
    assert (answer["type"], answer["error"]) == ("refused", "bad_request"), answer
    assert "time window" in answer["reason"]
    assert b1.balance(alice, EUR) == (0, 0)
    assert [p["type"] for p in b1.interbank.proofs()] == ["misconduct"]


@pytest.mark.parametrize(("asset", "code"), [("bank3.example:USD", "foreign_asset"),
                                             (USD, "position_exceeded")])
def test_a_lie_in_another_hold_of_an_intent_refused_is_still_proven_as_a_lie(world, asset,
                                                                              code):
    """Another hold of an intent already refused is a ``conflict``, but a lie the message or
    our books show (a third bank's IOU, more of ours than the peer holds) is proven first, as
    in the first hold (found by the generated lies of tests/hostile/test_generated_lies.py)."""
    clock, b1, b2, _net = world
    alice = b1.join("alice")
    payer, chain = SigningKey.generate(), SigningKey.generate().public_key
    for at in (clock(), clock() + 1):
        hold, record = forged_hold(b2, alice.chain, asset, 7, now=clock(), payer=payer,
                                   chain=chain, time=at)
        answer = receive(b1, b2, transfer(b2, hold, record, clock()))
        assert (answer["type"], answer["error"]) == ("refused", code), answer
    assert [p["type"] for p in b1.interbank.proofs()] == ["misconduct", "misconduct"]


def test_one_intent_in_many_holds_is_credited_once(world):
    """Found by the outside attacker: one payer intent wrapped in three holds (two of them
    at one chain and height) was credited three times. The first is credited; the others
    are refused ``conflict`` (attack 17), and the first, sent again, gets its decision."""
    clock, b1, b2, _net = world
    alice = b1.join("alice")
    payer = SigningKey.generate()
    first, record = forged_hold(b2, alice.chain, EUR, 7, now=clock(), payer=payer)
    intent = first.doc["entry"]["intent"]
    answers, holds = [], []
    for height, time in ((1, clock() + 5), (2, clock())):
        hold = sign_entry_as(b2.key, {**first.doc["entry"], "height": height, "time": time,
                                      "intent": intent})
        holds.append(hold)
        answers.append(b1.interbank.receive(transfer(b2, hold, record, clock() + height),
                                            b2.key.public_key))
    assert decision(answers[0])[0] == "credited"
    assert (decision(answers[1])[0], decision(answers[1])[1]["error"]) == ("refused", "conflict")
    assert (decision(b1.interbank.receive(transfer(b2, first, record, clock()),
                                          b2.key.public_key))[1]["error"]) == "conflict"
    again = transfer(b2, holds[0], record, clock() + 9)  # the first hold, re-wrapped
    assert decision(b1.interbank.receive(again, b2.key.public_key)) == decision(answers[0])
    assert b1.balance(alice, EUR) == (7, 0)


def _peer_offer(b2: NetBank, now: int, *, intent: bool = True, held: str = "100",
                sell: str = EUR, expires: int | None = None, seq: int = 1,
                other_chain: bool = False, intent_time: int | None = None,
                made: int | None = None) -> dict:
    """A peer's offer message, as bank 2 signs it at ``made`` (``now``), with what a test
    wants wrong in it."""
    made = now if made is None else made
    maker = SigningKey.generate()
    chain = SigningKey.generate().public_key
    body = {"sell": {"asset": sell, "amount": "100"}, "buy": {"asset": USD, "amount": "90"},
            "expires": expires or made + 60_000}
    named = SigningKey.generate().public_key if other_chain else chain
    entry = sign_entry_as(b2.key, {
        "chain": chain, "height": 1, "prev": os.urandom(32).hex(), "time": made,
        "kind": "offer", "evidence": [], "validator": b2.key.public_key,
        "intent": sign_intent(maker, "offer", named, seq, intent_time or made, body)
        if intent else None,
        "effects": [{"asset": sell, "balance": "0", "held": held}]})
    return sign_message(b2.key, "offer", B2, B1, now, offer=entry.doc)


@pytest.mark.parametrize(("offer", "code"), [
    ({"intent": False}, "bad_request"),   # found by the outside attacker: a 500
    ({"held": "1"}, "bad_request"),       # sells 100, holds 1: listed before
    ({"sell": "bank3.example:USD"}, "foreign_asset"),  # no customer here could get it
    # found by the second outside attacker: listed though no chain could hold them
    ({"other_chain": True}, "bad_request"), ({"seq": 0}, "bad_request"),
    ({"intent_time": 10**13}, "bad_request"), ({"expires": 10**13}, "bad_request"),
    ({"expires": 1}, "bad_request"),      # expired before it was made
    ({"made": 1_000}, "offer_closed"),    # made well, but long expired
])
def test_a_peer_offer_nobody_here_could_take_is_refused_and_not_listed(world, offer, code):
    clock, b1, b2, _net = world
    answer = receive(b1, b2, _peer_offer(b2, clock(), **offer))
    assert answer["type"] == "refused" and answer["error"] == code
    assert b1.interbank.offers(None) == []
    assert receive(b1, b2, _peer_offer(b2, clock()))["type"] == "ack"
    assert len(b1.interbank.offers(None)) == 1


def test_listing_offers_costs_what_it_lists_and_a_peer_s_offers_go_when_they_expire(world):
    """Found by the outside attacker: GET /v1/offers read every offer ever seen, closed or
    not, so 2,000 forged offers slowed every listing for good, and 300 connections asking
    for it stalled the bank. Now a listing reads the open ones it lists, a page at a time,
    and a peer's offer is let go when it expires."""
    clock, b1, b2, _net = world
    for i in range(30):
        assert receive(b1, b2, _peer_offer(b2, clock() + i))["type"] == "ack"
    everything = b1.interbank.offers(None)
    assert len(everything) == 30
    page = b1.interbank.offers(USD, limit=10)
    assert [o["id"] for o in page] == sorted(o["id"] for o in everything)[:10]
    assert [o["id"] for o in b1.interbank.offers(USD, page[-1]["id"], 10)] == \
        sorted(o["id"] for o in everything)[10:20]
    assert b1.interbank.offers("bank2.example:GBP") == []
    clock.now += 61_000
    b1.interbank.tick()
    assert b1.interbank.offers(None) == []
    with b1.ledger.store.read() as r:
        assert r.count("offers") == 0 and r.count("open_offers") == 0
