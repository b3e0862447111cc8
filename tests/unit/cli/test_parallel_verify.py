"""Verifying a chain with its signatures checked in worker processes (cli.parallel_verify):
the same verdicts as checking them inline, the first failure in height order, and a verifier
that checks inline again afterwards. Small pages and chunks, so that a short chain spans many
of both."""

from __future__ import annotations

import copy

import pytest

from cli import parallel_verify
from cli.parallel_verify import verify_all
from tchain.errors import VerificationError
from tchain.model import SignedEntry
from tchain.verify import ChainVerifier
from tests.helpers import BANK, USD, join, sign_entry_as, submit


@pytest.fixture(autouse=True)
def small_pages(monkeypatch):
    monkeypatch.setattr(parallel_verify, "PAGE", 5)
    monkeypatch.setattr(parallel_verify, "CHUNK", 3)


def payments(ledger, count: int):
    """alice pays bob ``count`` times; both chains' signed entries."""
    alice, bob = join(ledger, "alice"), join(ledger, "bob")
    ledger.deposit(f"alice*{BANK}", USD, 1000)
    for _ in range(count):
        submit(ledger, alice, alice.payment(bob, "1"))
    with ledger.store.read() as r:
        return [(c, [SignedEntry.from_bytes(raw).doc for raw in r.entries(c.chain, 0, 100)])
                for c in (alice, bob)]


@pytest.fixture
def chain(ledger):
    """alice's chain of 41 entries: genesis, a deposit, 39 payments to bob."""
    [(alice, entries), _] = payments(ledger, 39)
    assert len(entries) == 41
    return ledger, alice, entries


def verifier(ledger, alice) -> ChainVerifier:
    return ChainVerifier(ledger.bank.public_key, BANK, alice.chain)


def forge_signature(doc):
    """The entry with another signature: what a bank that rewrote it without its key serves."""
    doc = copy.deepcopy(doc)
    doc["sig"] = ("0" if doc["sig"][0] != "0" else "1") + doc["sig"][1:]
    return doc


@pytest.mark.parametrize("workers", [0, 2])
def test_an_honest_chain_verifies_to_the_state_the_bank_holds(chain, workers):
    ledger, alice, entries = chain
    v = verifier(ledger, alice)
    kept = verify_all(v, entries, workers=workers)
    assert [e.doc for e in kept] == entries
    assert v.state == ledger.state(alice.chain)


@pytest.mark.parametrize("workers", [0, 2])
def test_a_forged_signature_is_refused_naming_its_entry(chain, workers):
    ledger, alice, entries = chain
    entries[23] = forge_signature(entries[23])
    with pytest.raises(VerificationError, match="entry 23: validator signature does not verify"):
        verify_all(verifier(ledger, alice), entries, workers=workers)


def test_a_forged_owner_signature_is_refused_though_the_bank_signed_the_entry(chain):
    ledger, alice, entries = chain
    entry = copy.deepcopy(entries[17]["entry"])
    entry["intent"]["sig"] = forge_signature(entry["intent"])["sig"]
    entries[17] = sign_entry_as(ledger.bank.key, entry).doc
    with pytest.raises(VerificationError, match="entry 17: the intent does not verify"):
        verify_all(verifier(ledger, alice), entries, workers=2)


def test_the_first_failure_in_height_order_wins_over_a_later_broken_link(chain):
    ledger, alice, entries = chain
    entries[7] = forge_signature(entries[7])  # checked in a worker, later
    del entries[30]  # refused here, at once, when entry 31 does not link to 29
    with pytest.raises(VerificationError, match="entry 7: validator signature"):
        verify_all(verifier(ledger, alice), entries, workers=2)


def test_after_it_the_verifier_checks_signatures_as_it_goes(chain):
    ledger, alice, entries = chain
    v = verifier(ledger, alice)
    verify_all(v, entries[:30], workers=2)
    with pytest.raises(VerificationError, match="entry 30: validator signature"):
        v.feed(forge_signature(entries[30]))


@pytest.mark.parametrize("workers", [0, 2])
def test_a_credit_whose_debit_carries_a_forged_signature_is_refused(ledger, workers):
    """The bank signs a credit whose evidence, the payer's debit, it cannot have signed."""
    [_, (bob, entries)] = payments(ledger, 12)
    credit = copy.deepcopy(entries[9]["entry"])
    debit = forge_signature(credit["evidence"][0])
    credit["evidence"][0] = debit
    entries[9] = sign_entry_as(ledger.bank.key, credit).doc
    debit_id = SignedEntry.from_dict(debit).id
    with pytest.raises(VerificationError, match=f"entry 9: the evidence does not verify: the "
                                                f"signature of the debit {debit_id} by "):
        verify_all(verifier(ledger, bob), entries, workers=workers)
