"""Proofs of misbehaviour that anyone can check offline.

An **equivocation** is two validly signed entries with the same chain and height and different
ids (PROTOCOL.md §5): a validator promised never to sign two histories, and these two signatures
show it did. Later issues add proofs of non-settlement here, under the same ``verify_proof``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tchain.errors import EncodingError, SignatureError, VerificationError
from tchain.model import SignedEntry

__all__ = ["ProofSummary", "equivocation_proof", "verify_proof"]


@dataclass(frozen=True, slots=True)
class ProofSummary:
    """What a valid proof shows: who cheated, and a one-line account of it."""

    type: str
    culprit: str
    summary: str


def equivocation_proof(a: SignedEntry, b: SignedEntry) -> dict[str, Any]:
    """Package two conflicting entries as a proof document (checked before it is returned)."""
    proof = {"type": "equivocation", "validator": a.validator, "chain": a.chain_id,
             "height": a.height, "entries": [a.doc, b.doc]}
    verify_proof(proof)
    return proof


def _verify_equivocation(proof: dict[str, Any]) -> ProofSummary:
    if set(proof) != {"type", "validator", "chain", "height", "entries"}:
        raise VerificationError("an equivocation proof has exactly type, validator, chain, "
                                "height and entries")
    entries = proof["entries"]
    if not isinstance(entries, list) or len(entries) != 2:
        raise VerificationError("an equivocation proof holds exactly two entries")
    try:
        a, b = (SignedEntry.from_dict(e) for e in entries)
        for e in (a, b):
            e.verify(proof["validator"])
    except (EncodingError, SignatureError) as e:
        raise VerificationError(f"an entry of the proof does not verify: {e}") from e
    if a.height == 0 or b.height == 0:
        raise VerificationError("a genesis cannot equivocate: its id is the chain id")
    if (a.chain, a.height) != (b.chain, b.height) or a.chain != proof["chain"] \
            or a.height != proof["height"]:
        raise VerificationError("the two entries are not at the same chain and height as "
                                "the proof says")
    if a.id == b.id:
        raise VerificationError("the two entries are the same entry")
    return ProofSummary("equivocation", a.validator,
                        f"validator {a.validator} signed two different entries at height "
                        f"{a.height} of chain {a.chain}")


_VERIFIERS = {"equivocation": _verify_equivocation}


def verify_proof(proof: Any) -> ProofSummary:
    """Check a proof document offline.

    Raises:
        VerificationError: saying why the proof does not hold.
    """
    if not isinstance(proof, dict) or proof.get("type") not in _VERIFIERS:
        raise VerificationError(f"a proof is an object whose type is one of "
                                f"{sorted(_VERIFIERS)}")
    return _VERIFIERS[proof["type"]](proof)
