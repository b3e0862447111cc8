"""The ``double_settlement`` proof (tchain.proofs): two different settlements of one take, both
signed by the maker's bank, prove it decided the take twice; two different claims of one lock,
both signed by the payee's bank, prove it credited the lock twice; anything less proves
nothing."""

from __future__ import annotations

import pytest

from tchain.errors import VerificationError
from tchain.keys import SigningKey
from tchain.model import SignedEntry
from tchain.proofs import double_settlement_proof, verify_proof
from tests.helpers import sign_entry_as

BANK1, BANK2 = SigningKey.generate(), SigningKey.generate()
T = 1_800_000_000_000


def take(n: int, kind: str = "take") -> SignedEntry:
    return sign_entry_as(BANK1, {
        "chain": "ab" * 32, "height": n, "prev": "cd" * 32, "time": T, "kind": kind,
        "intent": None, "effects": [], "evidence": [], "validator": BANK1.public_key})


def settlement(kind: str, of: SignedEntry, *, key: SigningKey = BANK2, time: int = T + 1
               ) -> SignedEntry:
    return sign_entry_as(key, {
        "chain": "ef" * 32, "height": 3, "prev": "01" * 32, "time": time, "kind": kind,
        "intent": None, "effects": [], "evidence": [of.doc], "validator": key.public_key})


def test_a_settle_and_a_fill_of_one_take_prove_the_makers_bank_decided_it_twice():
    proof = double_settlement_proof(settlement("settle", take(2)), settlement("fill", take(2)))
    summary = verify_proof(proof)
    assert summary.culprit == BANK2.public_key and take(2).id in summary.summary


@pytest.mark.parametrize("second", [
    lambda: settlement("settle", take(2)),                 # the same entry twice
    lambda: settlement("fill", take(3)),                   # another take
    lambda: settlement("fill", take(2), key=BANK1),        # not the culprit's
    lambda: settlement("release", take(2), time=T + 2),    # not a settlement
    lambda: settlement("claim", take(2)),                  # a claim of a take
])
def test_anything_less_is_no_proof(second):
    with pytest.raises(VerificationError):
        double_settlement_proof(settlement("settle", take(2)), second())


def lock(n: int) -> SignedEntry:
    return take(n, "lock")


def test_two_claims_of_one_lock_prove_the_payees_bank_credited_it_twice():
    proof = double_settlement_proof(settlement("claim", lock(2)),
                                    settlement("claim", lock(2), time=T + 2))
    summary = verify_proof(proof)
    assert summary.culprit == BANK2.public_key and f"lock {lock(2).id}" in summary.summary


@pytest.mark.parametrize("second", [
    lambda: settlement("claim", lock(2)),                  # the same claim twice
    lambda: settlement("claim", lock(3), time=T + 2),      # another lock
    lambda: settlement("settle", lock(2), time=T + 2),     # a settle of a lock
    lambda: settlement("claim", lock(2), key=BANK1),       # not the culprit's
])
def test_anything_less_than_two_claims_of_one_lock_is_no_proof(second):
    with pytest.raises(VerificationError):
        double_settlement_proof(settlement("claim", lock(2)), second())
