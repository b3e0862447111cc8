"""Hash-time locks in the core (docs/adr/0008-hash-time-locks.md): the offline verifier
refuses the claims and closes a bank could forge: a wrong preimage, a claim after the expiry,
a second claim of one lock, a release before the expiry, a settle whose claim does not open
the lock."""

from __future__ import annotations

import pytest

from tchain.errors import EncodingError, VerificationError
from tchain.htlc import hash_of
from tchain.intents import sign_intent
from tchain.model import SignedEntry, SignedIntent
from tchain.verify import verify_chain
from tests.helpers import Clock, sign_entry_as
from tests.interbank_net import NetBank

B1 = "bank1.example"
USD = f"{B1}:USD"
P = "5a" * 32
H = hash_of(P)


def test_the_hash_is_the_plain_sha256_of_the_preimage_bytes():
    assert hash_of("00" * 32) == \
        "66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925"


@pytest.mark.parametrize("preimage", ["5A" * 32, "5a" * 31, "5a" * 33, 5, None])
def test_a_claim_needs_32_bytes_of_lowercase_hex(preimage):
    with pytest.raises(EncodingError):
        SignedIntent.from_dict({"intent": {"type": "claim", "chain": "ab" * 32, "seq": 1,
                                           "time": 1, "body": {"lock": "cd" * 32,
                                                               "preimage": preimage}},
                                "sig": "00" * 64})


@pytest.fixture
def chains(tmp_path):
    """Alice locks 300 USD for bob at one bank (expiry in a minute): the bank, both
    customers, the lock, and each chain's entries."""
    clock = Clock()
    b1 = NetBank(tmp_path / "b1", B1, clock)
    alice, bob = b1.join("alice"), b1.join("bob")
    b1.deposit(alice, 1000)
    lock = b1.submit(alice, "lock", {"to": bob.chain, "asset": USD, "amount": "300",
                                     "hash": H, "expires": clock.now + 60_000}
                     ).outcome.entries[0]
    return b1, alice, bob, lock


def entries(b1: NetBank, c) -> list[SignedEntry]:
    with b1.ledger.store.read() as r:
        return [SignedEntry.from_bytes(e) for e in r.entries(c.chain, 0, 100)]


def forged_claim(b1: NetBank, bob, after: SignedEntry, lock: SignedEntry, preimage: str, *,
                 time: int | None = None, seq: int = 1) -> SignedEntry:
    at = lock.time + 1 if time is None else time
    intent = sign_intent(bob.key, "claim", bob.chain, seq, at,
                         {"lock": lock.id, "preimage": preimage})
    return sign_entry_as(b1.key, {
        "chain": bob.chain, "height": after.height + 1, "prev": after.id, "time": at,
        "kind": "claim", "intent": intent,
        "effects": [{"asset": USD, "balance": "300", "held": "0"}], "evidence": [lock.doc],
        "validator": b1.key.public_key})


def verify(b1: NetBank, chain: list[SignedEntry]):
    return verify_chain(chain, b1.key.public_key, B1, chain[0].id)


def test_an_honest_claim_verifies_on_both_chains(chains):
    b1, alice, bob, lock = chains
    b1.submit(bob, "claim", {"lock": lock.id, "preimage": P})
    assert verify(b1, entries(b1, alice)).balances[USD].balance == 700
    assert verify(b1, entries(b1, bob)).balances[USD].balance == 300


def test_refuses_a_claim_with_a_wrong_preimage(chains):
    b1, _alice, bob, lock = chains
    mine = entries(b1, bob)
    with pytest.raises(VerificationError, match="preimage"):
        verify(b1, [*mine, forged_claim(b1, bob, mine[-1], lock, "00" * 32)])


def test_refuses_a_claim_after_the_expiry(chains):
    b1, _alice, bob, lock = chains
    mine = entries(b1, bob)
    with pytest.raises(VerificationError, match="expired"):
        verify(b1, [*mine, forged_claim(b1, bob, mine[-1], lock, P, time=lock.time + 60_000)])


def test_refuses_a_second_claim_of_one_lock(chains):
    b1, _alice, bob, lock = chains
    b1.submit(bob, "claim", {"lock": lock.id, "preimage": P})
    mine = entries(b1, bob)
    with pytest.raises(VerificationError, match="already claimed"):
        verify(b1, [*mine, forged_claim(b1, bob, mine[-1], lock, P, seq=2)])


def test_refuses_a_claim_by_another_chain(chains):
    b1, _alice, _bob, lock = chains
    carol = b1.join("carol")
    mine = entries(b1, carol)
    with pytest.raises(VerificationError, match="is for"):
        verify(b1, [*mine, forged_claim(b1, carol, mine[-1], lock, P)])


def _close(b1: NetBank, after: SignedEntry, kind: str, evidence: SignedEntry, *,
           time: int, effects: list[dict[str, str]]) -> SignedEntry:
    return sign_entry_as(b1.key, {
        "chain": after.chain_id, "height": after.height + 1, "prev": after.id, "time": time,
        "kind": kind, "intent": None, "effects": effects, "evidence": [evidence.doc],
        "validator": b1.key.public_key})


def test_refuses_a_release_of_a_lock_before_its_expiry(chains):
    b1, alice, _bob, lock = chains
    mine = entries(b1, alice)
    release = _close(b1, mine[-1], "release", lock, time=lock.time + 59_999,
                     effects=[{"asset": USD, "balance": "0", "held": "-300"}])
    with pytest.raises(VerificationError, match="before it expires"):
        verify(b1, [*mine, release])
    on_time = _close(b1, mine[-1], "release", lock, time=lock.time + 60_000,
                     effects=[{"asset": USD, "balance": "0", "held": "-300"}])
    assert verify(b1, [*mine, on_time]).balances[USD].held == 0


def test_refuses_a_settle_whose_claim_does_not_open_the_lock(chains):
    b1, alice, bob, lock = chains
    mine, theirs = entries(b1, alice), entries(b1, bob)
    claim = forged_claim(b1, bob, theirs[-1], lock, "00" * 32)
    settle = _close(b1, mine[-1], "settle", claim, time=lock.time + 2,
                    effects=[{"asset": USD, "balance": "-300", "held": "-300"}])
    with pytest.raises(VerificationError, match="preimage"):
        verify(b1, [*mine, settle])
