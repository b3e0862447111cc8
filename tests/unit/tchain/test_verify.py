"""The offline verifier (PROTOCOL.md §5) against chains made by the real ledger."""

from __future__ import annotations

import copy

import pytest

from tchain.encoding import canonical, parse
from tchain.errors import EncodingError, VerificationError
from tchain.keys import SigningKey
from tchain.model import SignedEntry
from tchain.proofs import equivocation_proof, verify_proof
from tchain.verify import ChainVerifier, verify_chain
from tests.helpers import BANK, T0, USD, join, sign_entry_as, submit


def chain_entries(ledger, chain):
    with ledger.store.read() as r:
        return r.entries(chain, 0, 10_000)


@pytest.fixture
def history(ledger):
    alice, bob = join(ledger, "alice"), join(ledger, "bob")
    ledger.deposit(f"alice*{BANK}", USD, 1000)
    for amount in ("100", "250", "1"):
        submit(ledger, alice, alice.payment(bob, amount))
    return alice, bob


def resign(key: SigningKey, doc):
    """Re-sign an altered entry with the validator's key (a dishonest validator)."""
    doc = copy.deepcopy(doc)
    doc["sig"] = key.sign("entry", doc["entry"])
    return doc


def test_honest_chains_verify_and_balances_match_the_store(ledger, history):
    alice, bob = history
    for customer in (alice, bob):
        state = verify_chain(chain_entries(ledger, customer.chain),
                             ledger.bank.public_key, BANK, customer.chain)
        assert state == ledger.state(customer.chain)


def test_verifier_refuses_entry_from_another_validator(ledger, history):
    alice, _ = history
    with pytest.raises(VerificationError, match="not by the chain's validator"):
        verify_chain(chain_entries(ledger, alice.chain), SigningKey.generate().public_key, BANK)


def test_any_changed_field_breaks_the_entry_signature(ledger, history):
    alice, _ = history
    entries = [SignedEntry.from_bytes(e).doc for e in chain_entries(ledger, alice.chain)]
    entries[2]["entry"]["effects"][0]["balance"] = "-1"
    with pytest.raises(VerificationError, match="signature does not verify"):
        verify_chain(entries, ledger.bank.public_key, BANK)


def test_skipped_entry_breaks_the_link(ledger, history):
    alice, _ = history
    entries = chain_entries(ledger, alice.chain)
    with pytest.raises(VerificationError, match="height"):
        verify_chain(entries[:1] + entries[2:], ledger.bank.public_key, BANK)


def test_validator_cannot_forge_an_effect_the_intent_did_not_ask(ledger, history):
    alice, _ = history
    docs = [SignedEntry.from_bytes(e).doc for e in chain_entries(ledger, alice.chain)]
    docs[2]["entry"]["effects"][0]["balance"] = "-99"
    docs[2] = resign(ledger.bank.key, docs[2])
    with pytest.raises(VerificationError, match="effects"):
        verify_chain(docs, ledger.bank.public_key, BANK)


def test_validator_cannot_credit_the_same_debit_twice(ledger, history):
    _, bob = history
    docs = [SignedEntry.from_bytes(e).doc for e in chain_entries(ledger, bob.chain)]
    dup = copy.deepcopy(docs[-1])
    dup["entry"]["height"] = len(docs)
    dup["entry"]["prev"] = SignedEntry.from_dict(docs[-1]).id
    docs.append(resign(ledger.bank.key, dup))
    with pytest.raises(VerificationError, match="already credited"):
        verify_chain(docs, ledger.bank.public_key, BANK)


def test_validator_cannot_overdraw_a_customer(ledger, history):
    alice, bob = history
    docs = [SignedEntry.from_bytes(e).doc for e in chain_entries(ledger, alice.chain)]
    # A dishonest validator signs a payment the owner signed but that overdraws the chain.
    doc = alice.payment(bob, "999999")
    forged = {"entry": {**docs[-1]["entry"], "height": len(docs),
                        "prev": SignedEntry.from_dict(docs[-1]).id, "intent": doc,
                        "effects": [{"asset": USD, "balance": "-999999", "held": "0"}]}}
    docs.append(resign(ledger.bank.key, forged))
    with pytest.raises(VerificationError, match="below zero"):
        verify_chain(docs, ledger.bank.public_key, BANK)


def test_verifier_streams_entry_by_entry(ledger, history):
    alice, _ = history
    verifier = ChainVerifier(ledger.bank.public_key, BANK, alice.chain)
    for height, raw in enumerate(chain_entries(ledger, alice.chain)):
        assert verifier.feed(raw).height == height == verifier.height


def test_equivocation_is_provable(ledger, history):
    alice, _ = history
    honest = SignedEntry.from_bytes(chain_entries(ledger, alice.chain)[2])
    other = copy.deepcopy(honest.doc)
    other["entry"]["time"] += 1
    forked = SignedEntry.from_dict(resign(ledger.bank.key, other))
    proof = equivocation_proof(honest, forked)
    summary = verify_proof(proof)
    assert summary.culprit == ledger.bank.public_key
    assert "height 2" in summary.summary


def test_equivocation_proof_with_any_changed_byte_is_invalid(ledger, history):
    alice, _ = history
    honest = SignedEntry.from_bytes(chain_entries(ledger, alice.chain)[2])
    other = copy.deepcopy(honest.doc)
    other["entry"]["time"] += 1
    proof = equivocation_proof(honest, SignedEntry.from_dict(resign(ledger.bank.key,
                                                                      other)))
    raw = canonical(proof)
    checked = 0
    for position in range(0, len(raw), max(1, len(raw) // 97)):
        changed = bytearray(raw)
        changed[position] ^= 0x01
        try:
            tampered = parse(bytes(changed))
        except EncodingError:
            continue  # no longer JSON: no proof at all
        with pytest.raises(VerificationError):
            verify_proof(tampered)
        checked += 1
    assert checked > 50


def test_same_entry_twice_is_not_an_equivocation(ledger, history):
    alice, _ = history
    entry = SignedEntry.from_bytes(chain_entries(ledger, alice.chain)[1])
    with pytest.raises(VerificationError, match="same entry"):
        equivocation_proof(entry, entry)


def test_a_genesis_that_registers_at_another_bank_is_refused(ledger, history):
    """A validator that opened a chain from a registration signed for another bank (replayed
    to it, or accepted by a bank that did not check) serves a genesis no verifier takes."""
    alice, _ = history
    genesis = copy.deepcopy(SignedEntry.from_bytes(chain_entries(ledger, alice.chain)[0]).doc)
    intent = genesis["entry"]["intent"]
    intent["intent"]["body"]["bank"] = "bank2.example"
    intent["sig"] = alice.key.sign("intent", intent["intent"])
    forged = resign(ledger.bank.key, genesis)
    with pytest.raises(VerificationError, match=r"at bank2\.example, not at bank1\.example"):
        verify_chain([forged], ledger.bank.public_key, BANK)
    # The same entry is sound for a verifier of the bank it names: only the name differs.
    verify_chain([forged], ledger.bank.public_key, "bank2.example")


def test_a_chain_opened_before_registrations_named_their_bank_still_verifies():
    """A genesis of an older version (its register names no bank) verifies; only new
    registrations must name theirs (test_ledger_rules)."""
    bank, alice = SigningKey(b"\x01" * 32), SigningKey(b"\x02" * 32)
    intent = {"type": "register", "seq": 0, "time": T0,
              "body": {"name": "alice", "owner": alice.public_key, "kyc": None, "params": {}}}
    genesis = sign_entry_as(bank, {
        "chain": None, "height": 0, "prev": "0" * 64, "time": T0, "kind": "genesis",
        "intent": {"intent": intent, "sig": alice.sign("intent", intent)}, "effects": [],
        "evidence": [], "validator": bank.public_key})
    state = verify_chain([genesis], bank.public_key, BANK, genesis.id)
    assert state.name == "alice"
