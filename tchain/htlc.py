"""Hash-time-locked transfers: what a lock and a claim of it must be (docs/adr/0008).

A ``lock`` entry holds an amount on the payer's chain for a payee until ``expires``; the payee
takes it with a ``claim`` entry on their own chain whose intent shows the preimage of the
lock's ``hash``, before the expiry by the payee bank's clock, once per lock; the payer's chain
then closes the hold with a ``settle`` carrying that claim (so the preimage is on the payer's
chain too, for anyone swapping against it), or, after the expiry and only on the payee bank's
word that nobody claimed it, with a ``release``.

Pure checks, shared by the rules (deciding what to sign), the chain state and the offline
verifier (checking what was signed), and the payer's bank (checking a peer's claim): one rule
for each, so none of them can disagree.
"""

from __future__ import annotations

from tchain.digest import sha256_hex
from tchain.errors import EncodingError, VerificationError
from tchain.model import ClaimBody, LockBody, SignedEntry
from tchain.values import UAI

__all__ = ["MAX_LOCK_MS", "MIN_LOCK_MS", "claim_fits_lock", "claimed_lock", "hash_of",
           "lock_body", "lock_terms_error", "lock_window_error"]

MIN_LOCK_MS = 10_000  # a lock shorter than this could expire before its peer hears of it
MAX_LOCK_MS = 30 * 86_400_000  # as an offer: value held longer is value frozen


def hash_of(preimage: str) -> str:
    """The lock hash a preimage opens: the plain SHA-256 of its bytes, in hex (no domain
    prefix: the secret of a swap may open locks of other systems too, as in Lightning)."""
    return sha256_hex(bytes.fromhex(preimage))


def lock_window_error(now: int, expires: int) -> str | None:
    """Why a lock made at ``now`` may not expire at ``expires``, or None if it may."""
    if not now + MIN_LOCK_MS <= expires <= now + MAX_LOCK_MS:
        return (f"a lock expires at least {MIN_LOCK_MS} ms and at most {MAX_LOCK_MS} ms after "
                f"now ({now}), got {expires}")
    return None


def lock_terms_error(now: int, body: LockBody, payer: str) -> str | None:
    """Why the chain at address ``payer`` may not lock ``body`` at ``now`` by the rules of §3
    that need no books (its expiry bounds; not the chain's own asset), or None. The payer's
    bank checks its customer's lock by it, and the payee's bank the peer's lock (at the
    lock entry's time, the payer's bank's ``now``): one rule, so the two cannot disagree."""
    window = lock_window_error(now, body.expires)
    if window is not None:
        return window
    if UAI.parse(str(body.asset)).issuer == payer:
        return f"{payer} issues {body.asset}: a lock moves what a chain holds, issue it first"
    return None


def lock_body(lock: SignedEntry) -> LockBody:
    """The lock intent's body inside a ``lock`` entry.

    Raises:
        VerificationError: the entry is not a lock carrying its owner's lock intent.
    """
    body = lock.intent.body if lock.intent is not None else None
    if lock.kind != "lock" or not isinstance(body, LockBody):
        raise VerificationError(f"a lock entry carrying a lock intent is needed, got a "
                                f"{lock.kind}")
    return body


def claimed_lock(claim: SignedEntry) -> SignedEntry:
    """The lock entry a ``claim`` entry carries as its one evidence item.

    Raises:
        VerificationError: it carries no single entry.
    """
    if claim.kind != "claim" or len(claim.evidence) != 1:
        raise VerificationError(f"a claim carries exactly one lock entry as evidence, got a "
                                f"{claim.kind} with {len(claim.evidence)}")
    try:
        return claim.evidence_entry(0)
    except EncodingError as e:
        raise VerificationError(f"the claim's evidence is not a signed entry: {e.message}"
                                ) from e


def claim_fits_lock(claim: SignedEntry, lock: SignedEntry) -> LockBody:
    """Check a ``claim`` entry against the lock it claims (its evidence): the payee's intent
    names that lock, the claim is an entry of the lock's payee chain, made no earlier than the
    lock and before the expiry by its bank's clock, and its preimage opens the lock's hash.
    Return the lock's body.

    What it does not check: signatures (the caller checks each under the key it trusts),
    that the lock was claimed only once (the payee's chain, and the payer's hold, keep that),
    and the effects (``entry_effects``).

    Raises:
        VerificationError: naming the broken term.
    """
    body = lock_body(lock)
    intent = claim.intent.body if claim.intent is not None else None
    if not isinstance(intent, ClaimBody) or intent.lock != lock.id:
        raise VerificationError(f"the claim's intent does not name lock {lock.id}")
    if claim.chain != body.to:
        raise VerificationError(f"the claim is on chain {claim.chain}; lock {lock.id} is for "
                                f"{body.to}")
    if claim.time < lock.time:  # (the ninth outside attacker had one settled)
        raise VerificationError(f"the claim at {claim.time} is older than lock {lock.id} it "
                                f"claims, made at {lock.time}")
    if claim.time >= body.expires:
        raise VerificationError(f"the claim at {claim.time} comes after lock {lock.id} expired "
                                f"at {body.expires}")
    if hash_of(intent.preimage) != body.hash:
        raise VerificationError(f"the preimage hashes to {hash_of(intent.preimage)}, not to the "
                                f"lock's hash {body.hash}")
    return body
