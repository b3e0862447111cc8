"""Hash-time locks against a lying payee's bank, with real banks on loopback: bank 2's real
key, in the test's hands, signs claims of bank 1's real locks that an honest bank 2 would never
send: with a wrong preimage, of a lock bank 1 never made, and of a lock bank 2 itself answered
expired (bank 1 had released it). Bank 1 must move nothing, refuse with the code, keep a proof
that `tchain proof verify` accepts, and keep its books (the ``liar`` fixture checks them and
the audit after each)."""

from __future__ import annotations

import json
from pathlib import Path

from tchain.clock import now_ms
from tchain.htlc import hash_of
from tchain.intents import sign_intent
from tchain.keys import SigningKey
from tchain.messages import Message
from tchain.model import SignedEntry
from tests.helpers import Customer
from tests.hostile.conftest import B1, B2
from tests.hostile.harness import HostilePeer
from tests.realbanks import balance, eventually, read, register, submit
from tests.realwallets import ok
from validator.operator import deposit

USD = f"{B1}:USD"
PREIMAGE = "42" * 32


def real_lock(b1, b2, payer: str, payee: str, expires_in_ms: int = 60_000
              ) -> tuple[Customer, Customer, SignedEntry]:
    """A real lock at bank 1: 500 USD of ``payer`` for ``payee`` at bank 2, on PREIMAGE's
    hash; bank 2 has it (ack) once this returns."""
    alice, bob = register(b1, payer), register(b2, payee)
    deposit(b1.config, payer, "1000", "USD")
    r = submit(b1, alice, "lock", {"to": bob.chain, "to_validator": B2, "asset": USD,
                                   "amount": "500", "hash": hash_of(PREIMAGE),
                                   "expires": now_ms() + expires_in_ms})
    assert r.status_code in (201, 202), r.text
    lock = SignedEntry.from_dict(r.json()["entries"][0])
    eventually(lambda: read(b2, lambda r: r.record("locks", lock.id)) is not None)
    return alice, bob, lock


def claimed(liar: HostilePeer, bob: Customer, lock: SignedEntry, preimage: str, *,
            time: int | None = None) -> dict:
    """Bob's claim of ``lock`` (his key, bank 2's key), outside any rule, in a ``claimed``."""
    at = time or now_ms()
    intent = sign_intent(bob.key, "claim", bob.chain, 1, at,
                         {"lock": lock.id, "preimage": preimage})
    claim = liar.entry(chain=bob.chain, kind="claim", intent=intent, time=at,
                       effects=[{"asset": USD, "balance": "500", "held": "0"}],
                       evidence=[lock.doc])
    return liar.sign("claimed", claim=claim.doc,
                     claimant=liar.record(bob.chain, bob.key.public_key, bob.name))


def verified_by_the_cli(b1, message: dict, tmp_path: Path) -> str:
    proof = read(b1, lambda r: r.record("proofs", Message.from_dict(message).id))
    assert proof is not None
    path = tmp_path / "proof.json"
    path.write_text(json.dumps(proof))
    return str(json.loads(ok("proof", "verify", str(path), "--json").stdout)["summary"])


def test_a_claim_with_a_wrong_preimage_is_refused_as_proven_misconduct(pair, liar, tmp_path):
    b1, b2 = pair
    alice, bob, lock = real_lock(b1, b2, "alice-w", "bob-w")
    message = claimed(liar, bob, lock, "00" * 32)
    said = liar.answer_of(message)
    assert (said["type"], said["error"]) == ("refused", "bad_request")
    assert balance(b1, alice, USD) == (1000, 500)
    assert "preimage" in verified_by_the_cli(b1, message, tmp_path)


def test_a_claimed_for_a_lock_bank_1_never_made_moves_nothing(pair, liar):
    b1, b2 = pair
    alice, bob, _lock = real_lock(b1, b2, "alice-n", "bob-n")
    payer = SigningKey.generate()
    intent = sign_intent(payer, "lock", alice.chain, 1, now_ms(), {
        "to": bob.chain, "to_validator": B2, "asset": USD, "amount": "500",
        "hash": hash_of(PREIMAGE), "expires": now_ms() + 60_000})
    made_up = liar.entry(chain=alice.chain, kind="lock", intent=intent,
                         effects=[{"asset": USD, "balance": "0", "held": "500"}], height=2)
    said = liar.answer_of(claimed(liar, bob, made_up, PREIMAGE))
    assert (said["type"], said["error"]) == ("refused", "not_found")
    assert balance(b1, alice, USD) == (1000, 500)


def test_a_claim_after_its_own_lock_expired_answer_is_refused_and_proven(pair, liar, tmp_path):
    """Bank 2 (honest so far) answered the lock expired and bank 1 released it; then bank 2's
    key signs a claim of it dated before the expiry: refused, nothing moves, and the two
    signatures of bank 2 are a lock_conflict proof."""
    b1, b2 = pair
    alice, bob, lock = real_lock(b1, b2, "alice-x", "bob-x", expires_in_ms=11_000)
    eventually(lambda: balance(b1, alice, USD) == (1000, 0), timeout=40)
    message = claimed(liar, bob, lock, PREIMAGE, time=lock.time + 1)
    said = liar.answer_of(message)
    assert (said["type"], said["error"]) == ("refused", "conflict")
    assert balance(b1, alice, USD) == (1000, 0)
    assert "expired and signed a claim" in verified_by_the_cli(b1, message, tmp_path)
