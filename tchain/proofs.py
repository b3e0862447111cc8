"""Proofs of misbehaviour that anyone can check offline.

An **equivocation** is two validly signed entries with the same chain and height and different
ids (PROTOCOL.md §5): a validator promised never to sign two histories, and these two signatures
show it did.

A **non-settlement** is a two-bank exchange one bank did not finish (paper §5, step 8): the
maker's bank shows the offer it signed, the taker's bank's signed take, its own settlement of
the maker's side, the deadline it gave, and every answer the taker's bank signed since, none of
them a settlement. The reporting bank signs the whole document, so any changed byte (the
deadline included) makes the proof invalid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tchain.errors import EncodingError, SignatureError, VerificationError
from tchain.keys import SigningKey, verify
from tchain.messages import Message
from tchain.model import OfferBody, SignedEntry, TakeBody
from tchain.state import Hold, check_settle_evidence, closing_effects

__all__ = ["ProofSummary", "equivocation_proof", "non_settlement_proof", "unsettled",
           "verify_proof"]

_NON_SETTLEMENT = {"type", "reporter", "culprit", "offer", "take", "settlement", "deadline",
                   "answers", "sig"}


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


def non_settlement_proof(key: SigningKey, *, offer: SignedEntry, take: SignedEntry,
                         settlement: SignedEntry, deadline: int,
                         answers: list[dict[str, Any]]) -> dict[str, Any]:
    """The maker's bank's signed account of a take its peer did not settle by ``deadline``."""
    proof: dict[str, Any] = {
        "type": "non_settlement", "reporter": key.public_key, "culprit": take.validator,
        "offer": offer.doc, "take": take.doc, "settlement": settlement.doc,
        "deadline": deadline, "answers": answers}
    proof["sig"] = key.sign("proof", proof)
    verify_proof(proof)
    return proof


def _entries(proof: dict[str, Any]) -> tuple[SignedEntry, SignedEntry, SignedEntry]:
    try:
        offer, take, settlement = (SignedEntry.from_dict(proof[k])
                                   for k in ("offer", "take", "settlement"))
        offer.verify(proof["reporter"])
        take.verify(proof["culprit"])
        settlement.verify(proof["reporter"])
    except (EncodingError, SignatureError) as e:
        raise VerificationError(f"an entry of the proof does not verify: {e}") from e
    return offer, take, settlement


def _verify_non_settlement(proof: dict[str, Any]) -> ProofSummary:
    # 1. the shape, and the reporter's signature over everything else.
    if set(proof) != _NON_SETTLEMENT:
        raise VerificationError(f"a non-settlement proof has exactly the fields "
                                f"{', '.join(sorted(_NON_SETTLEMENT))}")
    unsigned = {k: v for k, v in proof.items() if k != "sig"}
    try:
        verify(proof["reporter"], "proof", unsigned, proof["sig"])
    except (SignatureError, EncodingError) as e:
        raise VerificationError(f"the reporter's signature does not verify: {e}") from e
    if proof["reporter"] == proof["culprit"]:
        raise VerificationError("a bank cannot report itself")
    # 2. the three entries, each signed by the bank the story says.
    offer, take, settlement = _entries(proof)
    offer_body = offer.intent.body if offer.intent is not None else None
    take_body = take.intent.body if take.intent is not None else None
    if offer.kind != "offer" or not isinstance(offer_body, OfferBody):
        raise VerificationError("the offer is not an offer entry")
    if take.kind != "take" or not isinstance(take_body, TakeBody) or take_body.offer != offer.id:
        raise VerificationError("the take does not name the offer")
    # 3. the settlement settles the offer's hold with exactly this take.
    hold = Hold("offer", offer.height, str(offer_body.sell.asset), offer_body.sell.amount,
                offer_body.buy)
    try:
        check_settle_evidence(hold, take)
    except VerificationError as e:
        raise VerificationError(f"the take does not match the offer: {e.message}") from e
    if settlement.kind != "settle" or settlement.chain != offer.chain_id or \
            [SignedEntry.from_dict(x, checked=True).id
             for x in settlement.evidence] != [take.id] or \
            settlement.effects != closing_effects(hold, "settle"):
        raise VerificationError("the settlement is not the maker's settlement of this take")
    # 4. the deadline came after the settlement, and no answer since settled.
    deadline = proof["deadline"]
    if not isinstance(deadline, int) or isinstance(deadline, bool) or \
            deadline < settlement.time:
        raise VerificationError("the deadline must be a time after the settlement")
    answers = proof["answers"]
    if not isinstance(answers, list):
        raise VerificationError("answers must be a list of the culprit's signed messages")
    for doc in answers:
        try:
            answer = Message.from_dict(doc)
            answer.verify(proof["culprit"])
        except (EncodingError, SignatureError) as e:
            raise VerificationError(f"an answer does not verify: {e}") from e
        if answer.type == "settled":
            raise VerificationError("an answer in the proof is a settlement")
    last = max((Message.from_dict(d).time for d in answers), default=None)
    since = "no answer" if last is None else f"its last of {len(answers)} answer(s) at {last}"
    return ProofSummary("non_settlement", take.validator,
                        f"validator {take.validator} took offer {offer.id} of validator "
                        f"{offer.validator}, which settled its side at {settlement.time}; it "
                        f"did not settle by the deadline {deadline} ({since})")


_VERIFIERS = {"equivocation": _verify_equivocation, "non_settlement": _verify_non_settlement}


def verify_proof(proof: Any) -> ProofSummary:
    """Check a proof document offline.

    Raises:
        VerificationError: saying why the proof does not hold.
    """
    if not isinstance(proof, dict) or proof.get("type") not in _VERIFIERS:
        raise VerificationError(f"a proof is an object whose type is one of "
                                f"{sorted(_VERIFIERS)}")
    return _VERIFIERS[proof["type"]](proof)


def unsettled(proofs: list[dict[str, Any]]) -> dict[str, int]:
    """What non-settlement proofs leave in flight, by asset: the maker's side of each exchange,
    which the culprit never mirrored. Each asset's sum over all chains of all banks plus this is
    0: a cheat moves no value out of sight, it leaves it documented."""
    out: dict[str, int] = {}
    for proof in proofs:
        if proof.get("type") != "non_settlement":
            continue
        for effect in SignedEntry.from_dict(proof["settlement"]).effects:
            out[effect.asset] = out.get(effect.asset, 0) - effect.balance
    return out
