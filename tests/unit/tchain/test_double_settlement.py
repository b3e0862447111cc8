"""The ``double_settlement`` proof (tchain.proofs): two different settlements of one take, both
signed by the maker's bank, prove it decided the take twice; anything less proves nothing."""

from __future__ import annotations

import pytest

from tchain.errors import VerificationError
from tchain.keys import SigningKey
from tchain.model import SignedEntry
from tchain.proofs import double_settlement_proof, verify_proof
from tests.helpers import sign_entry_as

BANK1, BANK2 = SigningKey.generate(), SigningKey.generate()
T = 1_800_000_000_000


def take(n: int) -> SignedEntry:
    return sign_entry_as(BANK1, {
        "chain": "ab" * 32, "height": n, "prev": "cd" * 32, "time": T, "kind": "take",
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
])
def test_anything_less_is_no_proof(second):
    with pytest.raises(VerificationError):
        double_settlement_proof(settlement("settle", take(2)), second())
