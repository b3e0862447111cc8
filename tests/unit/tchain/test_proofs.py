"""What a proof's summary says: the banks by the names their keys are pinned under, where the
reader knows them (``tchain validator proofs``), and the keys themselves where it does not
(``tchain proof verify``, offline, knowing nobody)."""

from __future__ import annotations

from tchain.encoding import parse
from tchain.proofs import equivocation_proof, verify_proof
from tests.helpers import BANK, join, sign_entry_as, submit
from tests.interbank_net import two_banks
from tests.unit.tchain.test_peer_trust import B1, B2, forged_hold, transfer


def test_an_equivocation_names_the_bank_its_reader_knows(ledger):
    alice = join(ledger, "alice")
    bob = join(ledger, "bob")
    ledger.deposit(f"alice*{BANK}", f"{BANK}:USD", 100)
    [debit, _] = submit(ledger, alice, alice.payment(bob, "10"))
    other = sign_entry_as(ledger.bank.key, {**debit.doc["entry"],
                                                 "time": debit.time + 1})
    proof = equivocation_proof(debit, other)
    key = ledger.bank.public_key
    named = verify_proof(proof, names={key: BANK}).summary
    assert BANK in named and key not in named
    assert key in verify_proof(proof).summary
    assert verify_proof(proof, names={key: BANK}).culprit == key


def test_a_misconduct_names_the_liar_by_its_pinned_name(tmp_path):
    clock, b1, b2, _net = two_banks(tmp_path)
    alice = b1.join("alice")
    hold, record = forged_hold(b2, alice.chain, "bank3.example:USD", 500, now=clock())
    answer = parse(b1.interbank.receive(transfer(b2, hold, record, clock()),
                                        b2.key.public_key))["message"]
    assert answer["error"] == "foreign_asset"
    [proof] = b1.interbank.proofs()
    names = {b1.key.public_key: B1, b2.key.public_key: B2}
    summary = verify_proof(proof, names=names).summary
    assert B2 in summary and b2.key.public_key not in summary, summary
    assert b2.key.public_key in verify_proof(proof).summary
