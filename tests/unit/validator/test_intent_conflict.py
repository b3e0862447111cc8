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

from tchain.encoding import parse
from tchain.messages import Message, sign_message
from tchain.model import SignedEntry
from tests.helpers import decision, sign_entry_as
from tests.interbank_net import NetBank, all_sound, totals, two_banks

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


def test_another_take_of_a_take_intent_accepted_first_is_refused_conflict(
        tmp_path: Path) -> None:
    """The same on an exchange: bank2's key signs another take of bob's intent and hands it
    to the maker's bank first; the real take is refused ``conflict``, and bob's hold released
    (what the forged take moved is bank2's word: it owes the settlement it never sends)."""
    clock, b1, b2, net = two_banks(tmp_path)
    alice, bob = b1.join("alice"), b2.join("bob")
    b1.deposit(alice, 1000)
    b2.deposit(bob, 2000, "EUR")
    offer = b1.submit(alice, "offer", {
        "sell": {"asset": "bank1.example:USD", "amount": "100"},
        "buy": {"asset": "bank2.example:EUR", "amount": "90"},
        "expires": clock.now + 60_000}).outcome.entries[0]
    net.run()
    b2.submit(bob, "take", {"offer": offer.id, "validator": B1,
                            "sell": {"asset": "bank2.example:EUR", "amount": "90"},
                            "buy": {"asset": "bank1.example:USD", "amount": "100"}})
    with b2.ledger.store.read() as r:
        [sent] = [item["message"] for _, item in r.records("outbox")
                  if item["message"]["message"]["type"] == "take"]
    real = SignedEntry.from_dict(sent["message"]["take"])
    forged = sign_entry_as(b2.key, {**real.doc["entry"], "time": real.time + 1})
    fields = {k: v for k, v in sent["message"].items()
              if k not in ("type", "from", "to", "time", "take")}
    first = b1.interbank.receive(
        sign_message(b2.key, "take", B2, B1, clock(), take=forged, **fields), b2.key.public_key)
    assert decision(first)[0] == "take_accepted", parse(first)
    net.run()
    [answer] = [a for _, a in net.delivered
                if parse(a)["message"]["ref"] == Message.trusted(sent).id]
    assert parse(answer)["message"]["error"] == "conflict", parse(answer)
    assert b2.balance(bob, "bank2.example:EUR") == (2000, 0)  # released: bob gave nothing
    with b2.ledger.store.read() as r:
        assert r.open_holds() == []
