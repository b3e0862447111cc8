"""Attack 17, Finding 2: on a plain (non-routed) transfer, a tester holding bank1's key signed
another hold of alice's intent (the same but its time) and handed it to bank2 before the real
one. bank2 decided it, and answered the real transfer with that decision: a credit of another
hold, which bank1 can neither apply nor release, so alice's hold stayed open for ever. Another
hold of an intent answered already is now refused ``conflict`` (docs/protocol.md §11), so the
real hold is released; what the forged hold was credited is the forger's IOU, signed by it.
The same holds for a take of an offer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tchain.encoding import parse
from tchain.intents import sign_intent
from tchain.messages import Message, sign_message
from tchain.model import SignedEntry
from tchain.proofs import verify_proof
from tests.helpers import T0, Clock, decision, sign_entry_as
from tests.interbank_net import Net, NetBank, all_sound, pin, totals, two_banks
from validator.interbank.inbox import MAX_DEADLINE_MS

B1, B2 = "bank1.example", "bank2.example"


def _alice_pays_bob(tmp_path: Path):
    clock, b1, b2, net = two_banks(tmp_path)
    alice, bob = b1.join("alice"), b2.join("bob")
    b1.deposit(alice, 500)
    b1.submit(alice, "payment", {"to": bob.chain, "to_validator": B2,
                                 "asset": "bank1.example:USD", "amount": "100"})
    with b1.ledger.store.read() as r:
        [(mid, item)] = list(r.records("outbox"))
    return clock, b1, b2, net, alice, bob, mid, item["message"]


def _another_hold(b1: NetBank, real: SignedEntry, at: int) -> SignedEntry:
    """The real hold of alice's intent, re-signed by bank1's key with another time."""
    return sign_entry_as(b1.key, {**real.doc["entry"], "time": at})


def _send(b1: NetBank, b2: NetBank, message: dict[str, Any], at: int, hold: SignedEntry, *,
          deadline: int) -> bytes:
    fields = {k: v for k, v in message["message"].items()
              if k in ("payer", "kyc_required")}
    forged = sign_message(b1.key, "transfer", B1, B2, at, hold=hold, deadline=deadline,
                          **fields)
    return b2.interbank.receive(forged, b1.key.public_key)


def _every_hold_closed(*banks: NetBank) -> None:
    for bank in banks:
        with bank.ledger.store.read() as r:
            assert r.open_holds() == [], bank.name


def test_another_hold_credited_first_leaves_the_real_one_refused_conflict(
        tmp_path: Path) -> None:
    clock, b1, b2, net, alice, bob, _, sent = _alice_pays_bob(tmp_path)
    real = SignedEntry.from_dict(sent["message"]["hold"])
    forged = _another_hold(b1, real, real.time + 1)
    assert forged.id != real.id and forged.intent == real.intent
    first = _send(b1, b2, sent, clock(), forged, deadline=clock() + 10_000)
    assert decision(first)[0] == "credited"
    net.run()
    [(_, answer)] = net.delivered
    assert decision(answer)[0:1] == ("refused",) and parse(answer)["message"]["error"] == \
        "conflict", parse(answer)
    assert b1.balance(alice, "bank1.example:USD") == (500, 0)  # released, not paid
    assert b2.balance(bob, "bank1.example:USD") == (100, 0)  # the forger's IOU, its own word
    _every_hold_closed(b1, b2)
    assert {a: t for a, t in totals(b1, b2).items() if t} == {"bank1.example:USD": 100}


def test_another_hold_refused_first_leaves_the_real_one_refused_conflict(
        tmp_path: Path) -> None:
    clock, b1, b2, net, alice, bob, _, sent = _alice_pays_bob(tmp_path)
    real = SignedEntry.from_dict(sent["message"]["hold"])
    first = _send(b1, b2, sent, clock(), _another_hold(b1, real, real.time + 1),
                  deadline=clock() - 1)
    assert parse(first)["message"]["error"] == "expired"
    net.run()
    [(_, answer)] = net.delivered
    assert parse(answer)["message"]["error"] == "conflict", parse(answer)
    assert b1.balance(alice, "bank1.example:USD") == (500, 0)
    assert b2.balance(bob, "bank1.example:USD") == (0, 0)
    _every_hold_closed(b1, b2)
    all_sound(b1, b2, chains_verify=True)


def test_the_same_hold_in_another_message_gets_the_same_decision(tmp_path: Path) -> None:
    clock, b1, b2, net, _, bob, _, sent = _alice_pays_bob(tmp_path)
    net.run()
    real = SignedEntry.from_dict(sent["message"]["hold"])
    again = _send(b1, b2, sent, clock() + 5, real, deadline=clock() + 10_000)
    [(_, answer)] = net.delivered
    assert decision(again) == decision(answer)
    assert parse(again)["message"]["ref"] != parse(answer)["message"]["ref"]
    assert b2.balance(bob, "bank1.example:USD") == (100, 0)
    all_sound(b1, b2, chains_verify=True)


def _bob_takes(tmp_path: Path, **offer: Any):
    """bob at bank2 takes alice's offer at bank1 (100 bank1 USD for 90 bank2 EUR, ``offer``
    its other terms); bank2's take message is in its outbox, not sent yet."""
    clock, b1, b2, net = two_banks(tmp_path)
    alice, bob = b1.join("alice"), b2.join("bob")
    b1.deposit(alice, 1000)
    b2.deposit(bob, 2000, "EUR")
    made = b1.submit(alice, "offer", {
        "sell": {"asset": "bank1.example:USD", "amount": "100"},
        "buy": {"asset": "bank2.example:EUR", "amount": "90"}, **offer}).outcome.entries[0]
    net.run()
    b2.submit(bob, "take", {"offer": made.id, "validator": B1,
                            "sell": {"asset": "bank2.example:EUR", "amount": "90"},
                            "buy": {"asset": "bank1.example:USD", "amount": "100"}})
    with b2.ledger.store.read() as r:
        [(mid, item)] = [(m, i) for m, i in r.records("outbox")
                         if i["message"]["message"]["type"] == "take"]
    sent = item["message"]
    fields = {k: v for k, v in sent["message"].items()
              if k not in ("type", "from", "to", "time", "take")}
    return clock, b1, b2, net, bob, mid, sent, fields


@pytest.mark.parametrize("forged_deadline", [10_000, -1])
def test_another_take_of_a_take_intent_decided_first_is_refused_conflict(
        tmp_path: Path, forged_deadline: int) -> None:
    """The same on an exchange: bank2's key signs another take of bob's intent and hands it
    to the maker's bank first (accepted, or refused past its deadline); the real take is
    refused ``conflict``, and bob's hold released (what a forged take accepted moved is
    bank2's word: it owes the settlement it never sends). Attack 18: the real take, sent
    again ten minutes later, was accepted."""
    clock, b1, b2, net, bob, _, sent, fields = _bob_takes(tmp_path, expires=T0 + 3_600_000)
    real = SignedEntry.from_dict(sent["message"]["take"])
    forged = sign_entry_as(b2.key, {**real.doc["entry"], "time": real.time + 1})
    first = b1.interbank.receive(sign_message(
        b2.key, "take", B2, B1, clock(), take=forged,
        **{**fields, "deadline": clock() + forged_deadline}), b2.key.public_key)
    assert decision(first)[0] == ("take_accepted" if forged_deadline > 0 else "refused")
    net.run()
    [answer] = [a for _, a in net.delivered
                if parse(a)["message"]["ref"] == Message.trusted(sent).id]
    assert parse(answer)["message"]["error"] == "conflict", parse(answer)
    assert b2.balance(bob, "bank2.example:EUR") == (2000, 0)  # released: bob gave nothing
    with b2.ledger.store.read() as r:
        assert r.open_holds() == []
    # attack 18: the real take, released, sent again once ten minutes have passed
    clock.now += 11 * 60_000
    b1.interbank.tick()
    late = b1.interbank.receive(
        sign_message(b2.key, "take", B2, B1, clock(), take=real, **{
            **fields, "deadline": clock() + 10_000}), b2.key.public_key)
    assert decision(late)[0] == "refused", parse(late)


# --- Attack 18 ------------------------------------------------------------------------------

def _sweep(bank: NetBank, clock: Clock, ms: int) -> None:
    """Let ``ms`` pass on ``bank``'s clock and let it forget what it keeps no longer."""
    clock.now += ms
    bank.interbank.tick()


@pytest.mark.parametrize("first", ["another_hold", "another_hold_expired", "the_hold_expired"])
def test_a_hold_refused_here_is_never_credited_later(tmp_path: Path, first: str) -> None:
    """Attack 18, Finding 1: a hold bank2 refused (``conflict`` behind another hold of its
    intent, or ``expired`` in a message with a past deadline), so that bank1 released it, was
    credited when bank1's key sent it again in a new message ten minutes later, once the
    refusal was let go: a credit against a hold its payer got back. What is decided on an
    intent is kept for as long as a transfer of it can be taken, and after that it is
    too old to be."""
    clock, b1, b2, net, alice, bob, _, sent = _alice_pays_bob(tmp_path)
    real = SignedEntry.from_dict(sent["message"]["hold"])
    if first.startswith("another_hold"):
        _send(b1, b2, sent, clock(), _another_hold(b1, real, real.time + 1),
              deadline=clock() + (-1 if first.endswith("expired") else 10_000))
    else:
        _send(b1, b2, sent, clock(), real, deadline=clock() - 1)
    net.run()
    assert b1.balance(alice, "bank1.example:USD") == (500, 0)  # released
    for wait in (11 * 60_000, 3_600_000, MAX_DEADLINE_MS):
        _sweep(b2, clock, wait)
        again = _send(b1, b2, sent, clock(), real, deadline=clock() + 10_000)
        assert decision(again)[0] == "refused", (wait, parse(again))
    assert b2.balance(bob, "bank1.example:USD") == ((100, 0) if first == "another_hold"
                                                     else (0, 0))  # (the forged one's)


def test_a_peer_cannot_decide_another_peer_s_transfer(tmp_path: Path) -> None:
    """Attack 18, Finding 2: bank2 handed bank3 bank4's hold of erin's intent (not signed by
    bank2's key) ahead of bank4; bank3 refused it ``bad_signature``, and refused bank4's real
    transfer of that hold the same way. What one peer sends decides nothing another asks."""
    clock = Clock()
    b1, b2, b3 = (NetBank(tmp_path / f"b{i}", f"bank{i}.example", clock) for i in (1, 2, 3))
    pin(b1, b3)
    pin(b2, b3)
    net = Net(b1, b2, b3)
    erin, dave = b1.join("erin"), b3.join("dave")
    b1.deposit(erin, 50)
    b1.submit(erin, "payment", {"to": dave.chain, "to_validator": "bank3.example",
                                "asset": "bank1.example:USD", "amount": "6"})
    with b1.ledger.store.read() as r:
        [(_, item)] = list(r.records("outbox"))
    hold = SignedEntry.from_dict(item["message"]["message"]["hold"])
    fields = {k: v for k, v in item["message"]["message"].items()
              if k in ("payer", "kyc_required")}
    lie = sign_message(b2.key, "transfer", "bank2.example", "bank3.example", clock(), hold=hold,
                       deadline=clock() + 10_000, **fields)
    assert decision(b3.interbank.receive(lie, b2.key.public_key))[0] == "refused"
    net.run()
    assert b3.balance(dave, "bank1.example:USD") == (6, 0)
    assert b1.balance(erin, "bank1.example:USD") == (44, 0)


def test_a_hold_sent_in_a_message_of_another_type_decides_nothing_of_its_transfer(
        tmp_path: Path) -> None:
    """Attack 18, Finding 3: a hold sent first in a ``settle`` (refused: no settlement) had
    that refusal given to the real transfer of it; and a hold credited, sent again in a
    ``settle``, was answered ``credited``, no answer to a settle."""
    clock, b1, b2, net, _, bob, _, sent = _alice_pays_bob(tmp_path)
    real = SignedEntry.from_dict(sent["message"]["hold"])
    settle = sign_message(b1.key, "settle", B1, B2, clock(), settlement=real)
    assert decision(b2.interbank.receive(settle, b1.key.public_key))[0] == "refused"
    net.run()
    assert b2.balance(bob, "bank1.example:USD") == (100, 0)
    again = sign_message(b1.key, "settle", B1, B2, clock() + 1, settlement=real)
    assert decision(b2.interbank.receive(again, b1.key.public_key))[0] == "refused"


@pytest.mark.parametrize("real_first", [True, False])
def test_another_take_of_an_intent_waiting_in_a_window_is_refused_conflict(
        tmp_path: Path, real_first: bool) -> None:
    """Attack 18, Finding 4: a second take entry of an intent waiting in an offer's window
    was answered ``pending``, then refused ``outbid`` ("better takes took all of it": the
    same intent in another entry). It is another take of a waiting intent: ``conflict``."""
    clock, b1, b2, net, bob, mid, sent, fields = _bob_takes(
        tmp_path, expires=T0 + 60_000, window=5_000)
    real = SignedEntry.from_dict(sent["message"]["take"])
    other = sign_message(b2.key, "take", B2, B1, clock() + 1, **fields,
                         take=sign_entry_as(b2.key, {**real.doc["entry"], "time": real.time + 1}))
    if real_first:
        net.deliver(b2, mid)
    answer = b1.interbank.receive(other, b2.key.public_key)
    if real_first:
        assert parse(answer)["message"].get("error") == "conflict", parse(answer)
        clock.now += 6_000  # the window closes: the real take, still waiting, is decided
        net.run()
        assert b2.balance(bob, "bank1.example:USD") == (100, 0)  # (the conflict took nothing)
        assert b2.balance(bob, "bank2.example:EUR") == (1910, 0)
    else:
        assert decision(answer)[0] == "pending"
        net.deliver(b2, mid)
        [real_answer] = [a for m, a in net.delivered if m == mid]
        assert parse(real_answer)["message"].get("error") == "conflict", parse(real_answer)


def test_a_second_claim_of_a_lock_claimed_already_is_refused_conflict(tmp_path: Path) -> None:
    """Attack 19, Finding 3: after bob's claim settled alice's lock, bank2 sent claims of the
    same lock in other entries, of the same claim intent and of another one bob signed: each
    was acknowledged (one credit all the same). One lock, one claim: another is a
    ``conflict``; the same claim again is acknowledged, as any repeat."""
    from tests.unit.validator.test_htlc import across, claim  # (its lock set-up)

    world = two_banks(tmp_path)
    clock, b1, b2, net = world
    alice, bob, preimage, usd = across(world)
    claim(b2, bob, usd, preimage)
    with b2.ledger.store.read() as r:
        [sent] = [i["message"]["message"] for _, i in r.records("outbox")
                  if i["message"]["message"]["type"] == "claimed"]
    net.run()
    assert b1.balance(alice, "bank1.example:USD") == (500, 0)
    real = SignedEntry.from_dict(sent["claim"])

    def claimed(entry: SignedEntry, at: int) -> dict[str, Any]:
        return parse(b1.interbank.receive(sign_message(
            b2.key, "claimed", B2, B1, at, claim=entry, claimant=sent["claimant"]),
            b2.key.public_key))["message"]

    assert claimed(real, clock() + 1)["type"] == "ack"  # the same claim, re-wrapped
    again = sign_entry_as(b2.key, {**real.doc["entry"], "time": real.time + 1})
    assert claimed(again, clock() + 2).get("error") == "conflict"
    other = sign_intent(bob.key, "claim", bob.chain, bob.seq + 1, clock(),
                        {"lock": usd.id, "preimage": preimage})
    another = sign_entry_as(b2.key, {**real.doc["entry"], "intent": other,
                                     "height": real.height + 2})
    assert claimed(another, clock() + 3).get("error") == "conflict"
    assert b1.balance(alice, "bank1.example:USD") == (500, 0)
    # two claims of one lock, of two intents, both bank2's signatures: two credits of one
    # lock, proven (the other entry of the first claim's intent is refused by §11 (6) first)
    [proof] = b1.interbank.proofs()
    shown = verify_proof(proof)
    assert (shown.type, shown.culprit) == ("double_settlement", b2.key.public_key)
    assert f"lock {usd.id}" in shown.summary and another.id in shown.summary
