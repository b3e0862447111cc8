"""Attack 19, Finding 1: the maker's bank (a liar, bank2) pushed a ``settle`` of carol's take
while it waited in the offer's window, so carol's bank settled her side; when the window
closed it gave the offer to a better bid and refused carol's take ``outbid``. Carol's bank had
stopped asking its take on the settle, so it never heard the refusal and kept nothing of two
decisions its peer signed about one take. It now asks its take until the take itself is
answered, and keeps a ``take_contradiction`` proof when the answer refuses what the peer
settled."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tchain.encoding import parse
from tchain.errors import VerificationError
from tchain.messages import sign_message
from tchain.model import SignedEntry
from tchain.proofs import verify_proof
from tests.interbank_net import two_banks
from tests.vectors.take_contradiction import (
    take_contradiction_vector,
    windowed_take_settled_ahead,
)

B1, B2 = "bank1.example", "bank2.example"
USD1, USD2 = f"{B1}:USD", f"{B2}:USD"


def test_a_take_settled_by_a_pushed_settle_then_refused_leaves_a_proof(tmp_path: Path
                                                                       ) -> None:
    b1, _, carol, dave = windowed_take_settled_ahead(tmp_path, forge=True)
    assert b1.balance(dave, USD2) == (5, 0)  # the real decision: dave's better bid
    proofs = [verify_proof(p) for p in b1.interbank.proofs()]
    assert [p.type for p in proofs] == ["take_contradiction"], proofs
    with b1.ledger.store.read() as r:
        assert list(r.records("outbox")) == []  # asked until answered, then no more
    assert b1.balance(carol, USD2) == (5, 0)  # settled stays settled: its signature owes it


def test_an_honest_windowed_exchange_settles_once_and_proves_nothing(tmp_path: Path) -> None:
    b1, b2, carol, dave = windowed_take_settled_ahead(tmp_path, forge=False)
    assert b1.balance(dave, USD2) == (5, 0)
    assert b1.balance(carol, USD1) == (100, 0)  # outbid, released
    assert b1.interbank.proofs() == [] and b2.interbank.proofs() == []
    with b1.ledger.store.read() as r:
        assert list(r.records("outbox")) == [] and r.open_holds() == []


def test_a_take_contradiction_proof_that_does_not_hold_is_refused(tmp_path: Path) -> None:
    b1, _, _, _ = windowed_take_settled_ahead(tmp_path, forge=True)
    [proof] = b1.interbank.proofs()
    refusal = dict(proof["refusal"])
    refusal["message"] = {**refusal["message"], "ref": "00" * 32}  # (signature breaks too)
    for broken in ({**proof, "refusal": refusal}, {**proof, "request": proof["refusal"]},
                   {**proof, "culprit": b1.key.public_key}, {**proof, "extra": 1}):
        with pytest.raises(VerificationError):
            verify_proof(broken)
    assert SignedEntry.from_dict(proof["settlement"]).kind == "settle"


def test_an_honest_maker_s_refusal_of_a_message_it_does_not_believe_frames_nobody(
        tmp_path: Path) -> None:
    """Attack 20, Finding 1: bank2 (the taker's bank) sent honest bank1 (the maker's) a new
    ``take`` message carrying a take bank1 had settled, with a broken taker record; bank1
    refused it ``bad_signature``, as it must, and bank2 made of bank1's settlement, its own
    message and that refusal a ``take_contradiction`` that verified. A refusal of a message
    not believed is no decision of the take it carries."""
    clock, b1, b2, net = two_banks(tmp_path)
    alice, bob = b1.join("alice"), b2.join("bob")
    b1.deposit(alice, 100)
    b2.deposit(bob, 100)
    offer = b1.submit(alice, "offer", {
        "sell": {"asset": USD1, "amount": "3"}, "buy": {"asset": USD2, "amount": "3"},
        "expires": clock.now + 60_000}).outcome.entries[0]
    net.run()
    b2.submit(bob, "take", {"offer": offer.id, "validator": B1,
                            "sell": {"asset": USD2, "amount": "3"},
                            "buy": {"asset": USD1, "amount": "3"}})
    with b2.ledger.store.read() as r:
        [sent] = [i["message"] for _, i in r.records("outbox")
                  if i["message"]["message"]["type"] == "take"]
    net.run()
    [settlement] = [parse(a)["message"]["settlement"] for _, a in net.delivered
                    if parse(a)["message"]["type"] == "take_accepted"]
    fields = dict(sent["message"])
    taker = {**fields["taker"], "sig": "00" * 64}
    request = sign_message(b2.key, "take", B2, B1, clock(), take=fields["take"], taker=taker,
                           deadline=clock() + 10_000)
    refusal = parse(b1.interbank.receive(request, b2.key.public_key))
    assert refusal["message"]["error"] in ("bad_signature", "bad_request"), refusal
    forged = {"type": "take_contradiction", "culprit": b1.key.public_key,
              "settlement": settlement, "request": request, "refusal": refusal}
    with pytest.raises(VerificationError, match="no decision of the take"):
        verify_proof(forged)


VECTOR = json.loads((Path(__file__).parents[2] / "vectors" / "take_contradiction.json"
                     ).read_text("utf-8"))


def test_the_generator_reproduces_the_take_contradiction_vector() -> None:
    assert take_contradiction_vector() == VECTOR


def test_the_vector_proves_bank2_and_the_protocol_page_prints_it() -> None:
    shown = verify_proof(VECTOR["proof"])
    assert (shown.type, shown.culprit) == ("take_contradiction",
                                           VECTOR["validator_keys"][B2])
    assert "refused that take (outbid)" in shown.summary
    protocol = (Path(__file__).parents[3] / "docs" / "protocol.md").read_text("utf-8")
    section = protocol[protocol.index("**Take contradiction"):]
    assert f"`{VECTOR['proof_digest']}`" in section[:section.index("\n**", 10)]
