"""Hash-time locks against a lying payee's bank, on in-process banks: bank 2's key, in the
test's hands, signs claims an honest bank 2 would never send. Bank 1 must move nothing, refuse
with the code, keep a proof anyone can verify, and keep its books."""

from __future__ import annotations

import pytest

from tchain.encoding import parse
from tchain.errors import ConflictError, NotFoundError
from tchain.intents import sign_intent
from tchain.keys import SigningKey
from tchain.messages import sign_message
from tchain.model import SignedEntry
from tchain.proofs import verify_proof
from tchain.records import make_record
from tests.helpers import sign_entry_as
from tests.interbank_net import NetBank, all_sound, two_banks
from tests.unit.validator.test_htlc import B1, B2, USD, across, lock, secret


@pytest.fixture
def world(tmp_path):
    return two_banks(tmp_path)


def forged_claimed(b2: NetBank, bob, lock_entry: SignedEntry, preimage: str, *,
                   time: int | None = None, amount: str = "500") -> dict:
    """A claim of ``lock_entry`` by bob at bank 2, signed by bob's key and bank 2's, outside
    any rule, in a ``claimed`` message to bank 1."""
    at = time if time is not None else b2.ledger.clock()
    intent = sign_intent(bob.key, "claim", bob.chain, bob.seq + 1, at,
                         {"lock": lock_entry.id, "preimage": preimage})
    claim = sign_entry_as(b2.key, {
        "chain": bob.chain, "height": bob.seq + 1, "prev": "22" * 32, "time": at,
        "kind": "claim", "intent": intent,
        "effects": [{"asset": USD, "balance": amount, "held": "0"}],
        "evidence": [lock_entry.doc], "validator": b2.key.public_key})
    record = make_record(b2.key, address=f"bob*{B2}", owner=bob.key.public_key,
                         chain=bob.chain, validator=B2)
    return sign_message(b2.key, "claimed", B2, B1, b2.ledger.clock(), claim=claim.doc,
                        claimant=record)


def answer(b1: NetBank, b2: NetBank, message: dict) -> dict:
    return dict(parse(b1.interbank.receive(message, b2.key.public_key))["message"])


def proofs(bank: NetBank) -> list[dict]:
    return bank.interbank.proofs()


def test_a_claim_with_a_wrong_preimage_is_refused_as_proven_misconduct(world):
    _clock, b1, b2, _net = world
    alice, bob, _preimage, usd = across(world)
    said = answer(b1, b2, forged_claimed(b2, bob, usd, "00" * 32))
    assert said["type"] == "refused" and said["error"] == "bad_request"
    assert b1.balance(alice, USD) == (1000, 500)  # nothing moved
    [proof] = proofs(b1)
    assert "preimage" in verify_proof(proof).summary


def test_a_claim_crediting_more_than_the_lock_is_refused_as_misconduct(world):
    _clock, b1, b2, _net = world
    alice, bob, preimage, usd = across(world)
    said = answer(b1, b2, forged_claimed(b2, bob, usd, preimage, amount="5000"))
    assert said["type"] == "refused" and said["error"] == "bad_request"
    assert b1.balance(alice, USD) == (1000, 500)
    verify_proof(proofs(b1)[0])


def test_a_claim_after_the_peer_answered_expired_is_refused_and_proven(world):
    """Bank 2 answered the lock expired (bank 1 released it), then signs a claim of it dated
    before the expiry: bank 1 moves nothing and keeps both of bank 2's signatures."""
    clock, b1, b2, net = world
    alice, bob, preimage, usd = across(world)
    before = clock.now + 1_000
    clock.now += 70_000
    net.run()
    assert b1.balance(alice, USD) == (1000, 0)  # released on bank 2's lock_expired
    said = answer(b1, b2, forged_claimed(b2, bob, usd, preimage, time=before))
    assert said["type"] == "refused" and said["error"] == ConflictError.code
    assert b1.balance(alice, USD) == (1000, 0)
    [proof] = proofs(b1)
    shown = verify_proof(proof)
    assert shown.type == "lock_conflict" and shown.culprit == b2.key.public_key
    tampered = dict(proof, claim=forged_claimed(b2, bob, lock(
        b1, alice, bob, 1, USD, secret()[1], clock.now + 60_000, B2), preimage)["message"]
        ["claim"])
    with pytest.raises(Exception, match="lock"):
        verify_proof(tampered)


def test_a_claimed_for_a_lock_it_never_got_is_refused(world):
    """A claim of a lock bank 1 never made (bank 2 signs the lock too): bank 1 knows no such
    lock; its signature is not bank 1's, so it is refused and nothing moves."""
    clock, b1, b2, _net = world
    alice, bob = b1.join("alice"), b2.join("bob")
    b1.deposit(alice, 1000)
    preimage, h = secret()
    payer = SigningKey.generate()
    intent = sign_intent(payer, "lock", alice.chain, 1, clock.now, {
        "to": bob.chain, "to_validator": B2, "asset": USD, "amount": "500", "hash": h,
        "expires": clock.now + 60_000})
    made_up = sign_entry_as(b1.key, {
        "chain": alice.chain, "height": 7, "prev": "33" * 32, "time": clock.now,
        "kind": "lock", "intent": intent,
        "effects": [{"asset": USD, "balance": "0", "held": "500"}], "evidence": [],
        "validator": b1.key.public_key})  # bank 1's key: a lock it could have signed
    said = answer(b1, b2, forged_claimed(b2, bob, made_up, preimage))
    assert said["type"] == "refused" and said["error"] == NotFoundError.code
    assert b1.balance(alice, USD) == (1000, 0)
    all_sound(b1, chains_verify=True)
