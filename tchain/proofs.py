"""Proofs of misbehaviour that anyone can check offline.

An **equivocation** is two validly signed entries with the same chain and height and different
ids (PROTOCOL.md §5): a validator promised never to sign two histories, and these two signatures
show it did.

A **misconduct** is a peer's signed message that only a dishonest bank would send (docs/protocol.md
§13): a hold whose customer's intent does not verify under the key the peer itself gives, an
entry that contradicts its own intent, a third bank's IOU, or more of the reporter's IOU than
the peer holds. All but the last are proven by the peer's message alone; the last needs the
reporter's books, so the proof carries the reporter's signed statement of what the peer held,
and is said to be attested, not proven.

A **non-settlement** is a two-bank exchange one bank did not finish (paper §5, step 8): the
maker's bank shows the offer it signed, the taker's bank's signed take, its own settlement of
the maker's side, the deadline it gave, and every answer the taker's bank signed since, none of
them a settlement. The reporting bank signs the whole document, so any changed byte (the
deadline included) makes the proof invalid.

A **lock conflict** is a payee's bank that decided a hash-time lock twice (tchain.htlc): its
signed ``lock_expired`` answer about the lock, and its signed claim entry of the same lock.
Both are the culprit's own signatures, so the proof needs no reporter's word.

A **double settlement** is a maker's bank that decided one take twice: two different entries
it signed, each a settle or fill whose one evidence entry is that take (the ninth outside
attacker had a forged part ``settle`` settled, then the real bank wrote its ``fill``). Its own
signatures again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tchain.encoding import parse
from tchain.errors import (
    BadRequestError,
    EncodingError,
    ForeignAssetError,
    PositionError,
    SignatureError,
    TChainError,
    VerificationError,
)
from tchain.htlc import claimed_lock
from tchain.keys import SigningKey, verify
from tchain.messages import Message
from tchain.model import OfferBody, SignedEntry, TakeBody
from tchain.peer_claims import crossing, fault, incoming
from tchain.plans.equivocation import check_plan_equivocation
from tchain.plans.proof import (
    PLAN_DEFAULT_FIELDS,
    check_plan_contradiction,
    check_plan_default,
)
from tchain.route_proof import ROUTE_UNPAID_FIELDS, check_route_unpaid
from tchain.state import check_settle_evidence, check_take_terms, fill_effects, offer_hold
from tchain.values import UAI, parse_amount

__all__ = ["ProofSummary", "double_settlement_proof", "equivocation_proof",
           "lock_conflict_proof", "misconduct_proof", "non_settlement_proof",
           "take_contradiction_proof", "unfair_selection_proof", "unsettled", "verify_proof"]

# The names of the banks a reader knows, by key: only for the summaries.
Names = Mapping[str, str]

_NON_SETTLEMENT = {"type", "reporter", "culprit", "offer", "take", "settlement", "deadline",
                   "answers", "sig"}


@dataclass(frozen=True, slots=True)
class ProofSummary:
    """What a valid proof shows: who cheated, and a one-line account of it."""

    type: str
    culprit: str
    summary: str


def _bank(key: str, names: Names) -> str:
    """A bank as a summary calls it: by the name the reader knows it by, else by its key."""
    return names.get(key) or f"validator {key}"


def equivocation_proof(a: SignedEntry, b: SignedEntry) -> dict[str, Any]:
    """Package two conflicting entries as a proof document (checked before it is returned)."""
    proof = {"type": "equivocation", "validator": a.validator, "chain": a.chain_id,
             "height": a.height, "entries": [a.doc, b.doc]}
    verify_proof(proof)
    return proof


def _verify_equivocation(proof: dict[str, Any], names: Names) -> ProofSummary:
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
                        f"{_bank(a.validator, names)} signed two different entries at height "
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


def _signed_by_reporter(proof: dict[str, Any], fields: set[str]) -> None:
    """Step 1 of a reporter's proof: exactly ``fields``, and the reporter's signature over
    all of them but ``sig``."""
    if set(proof) != fields:
        raise VerificationError(f"a {proof['type']} proof has exactly the fields "
                                f"{', '.join(sorted(fields))}")
    unsigned = {k: v for k, v in proof.items() if k != "sig"}
    try:
        verify(proof["reporter"], "proof", unsigned, proof["sig"])
    except (SignatureError, EncodingError) as e:
        raise VerificationError(f"the reporter's signature does not verify: {e}") from e


def _verify_non_settlement(proof: dict[str, Any], names: Names) -> ProofSummary:
    # 1. the shape, and the reporter's signature over everything else.
    _signed_by_reporter(proof, _NON_SETTLEMENT)
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
    # 3. the settlement settles the offer's hold (or, a fill, part of it) with exactly this
    # take: a settle takes all that remained, so it remained; a fill takes a part of what
    # remained, at the offer's price whatever that was (docs/adr/0007-partial-fills.md), or
    # what the take bid on an offer with a window (docs/adr/0009-best-taker.md)
    kind = settlement.kind
    got = take_body.buy.amount
    hold = offer_hold(offer, got if kind == "settle" else None)
    try:
        check_settle_evidence(hold, take, kind)
    except VerificationError as e:
        raise VerificationError(f"the take does not match the offer: {e.message}") from e
    if kind not in ("settle", "fill") or settlement.chain != offer.chain_id or \
            [SignedEntry.trusted(x).id
             for x in settlement.evidence] != [take.id] or \
            settlement.effects != fill_effects(hold, got, take_body.sell.amount):
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
                        f"{_bank(take.validator, names)} took offer {offer.id} of "
                        f"{_bank(offer.validator, names)}, which settled its side at "
                        f"{settlement.time}; it did not settle by the deadline {deadline} "
                        f"({since})")


_MISCONDUCT = {"type", "reporter", "reporter_name", "culprit", "error", "reason", "detail",
               "message", "time", "sig"}


def misconduct_proof(key: SigningKey, *, reporter: str, culprit_key: str, message: Message,
                     error: TChainError, now: int) -> dict[str, Any]:
    """The reporter's signed account of a peer's message it refused as misconduct."""
    proof: dict[str, Any] = {
        "type": "misconduct", "reporter": key.public_key, "reporter_name": reporter,
        "culprit": culprit_key, "error": error.code, "reason": error.message,
        "detail": {k: str(v) for k, v in error.detail.items()}, "message": message.doc,
        "time": now}
    proof["sig"] = key.sign("proof", proof)
    verify_proof(proof)
    return proof


def _verify_misconduct(proof: dict[str, Any], names: Names) -> ProofSummary:
    # 1. the shape, and the reporter's signature over everything else.
    _signed_by_reporter(proof, _MISCONDUCT)
    culprit, reporter = proof["culprit"], proof["reporter_name"]
    # 2. the message, signed by the culprit, to the reporter.
    try:
        message = Message.from_dict(proof["message"])
        message.verify(culprit)
    except (EncodingError, SignatureError) as e:
        raise VerificationError(f"the message does not verify as the culprit's: {e}") from e
    if message.to != reporter or message.sender == reporter:
        raise VerificationError(f"the message is from {message.sender} to {message.to}, not "
                                f"from a peer to {reporter}")
    who = names.get(culprit) or f"{message.sender} ({culprit})"
    # 3. what it broke, checked again from the message where the message alone shows it.
    code = proof["error"]
    if code in (SignatureError.code, BadRequestError.code):
        found = fault(message, culprit)
        if found is None and isinstance(proof["detail"], dict) and "offer" in proof["detail"]:
            return _take_against_offer(proof, message, who)
        if found is None:
            raise VerificationError(f"the {message.type} message does not show {code}: what "
                                    "it carries verifies and agrees with itself")
        return ProofSummary("misconduct", culprit,
                            f"{who} signed a {message.type} that {reporter} cannot take: "
                            f"{found} (proven by the message)")
    if code == ForeignAssetError.code:
        foreign = [a for a in crossing(message)
                   if UAI.parse(a).issuer_validator not in (reporter, message.sender)]
        nested = fault(message, culprit) if not foreign else None  # a hop back along a route
        if nested is not None:
            return ProofSummary("misconduct", culprit, f"{who} sent {reporter} a "
                                f"{message.type} that {nested} (proven by the message)")
        if not foreign:
            raise VerificationError("the message moves no asset of a third bank")
        return ProofSummary("misconduct", culprit,
                            f"{who} sent {reporter} a {message.type} of {foreign[0]}, an IOU of "
                            "neither bank (proven by the message)")
    if code == PositionError.code:
        given = incoming(message)
        detail = proof["detail"]
        if not isinstance(detail, dict) or set(detail) != {"held"}:
            raise VerificationError("a position proof states what the culprit held")
        held = parse_amount(detail["held"], "held")
        if given is None or UAI.parse(given[0]).issuer_validator != reporter or \
                given[1] <= held:
            raise VerificationError(f"the message does not hand back more of {reporter}'s "
                                    f"IOU than the {held} the reporter says the culprit held")
        return ProofSummary("misconduct", culprit,
                            f"{who} signed a {message.type} giving {given[1]} {given[0]} while "
                            f"it held {held} of it (attested by {reporter}'s books)")
    raise VerificationError(f"{code!r} is not a misconduct a proof can show")


def _take_against_offer(proof: dict[str, Any], message: Message, who: str) -> ProofSummary:
    """A take whose terms break the reporter's offer (docs/protocol.md §12): ``detail.offer``
    is the offer entry (canonical JSON), ``detail.remaining`` what the reporter says was left
    of it. Proven if the terms break the offer whatever remained (other assets, another
    price, more than it ever sold, a part of a whole-only offer); attested by the reporter
    if they break it only with so little left (a part below ``min_fill``)."""
    detail = proof["detail"]
    reporter = proof["reporter_name"]
    try:
        if set(detail) != {"offer", "remaining"} or not isinstance(detail["offer"], str):
            raise EncodingError("detail is offer (the entry's JSON) and remaining")
        offer = SignedEntry.from_dict(parse(detail["offer"].encode()))
        offer.verify(proof["reporter"])
        remaining = parse_amount(detail["remaining"], "remaining")
    except (EncodingError, SignatureError) as e:
        raise VerificationError(f"the offer in the proof is not the reporter's: {e}") from e
    take = message.entries.get("take")
    body = None if take is None or take.intent is None else take.intent.body
    if offer.kind != "offer" or offer.intent is None or \
            not isinstance(offer.intent.body, OfferBody) or not isinstance(body, TakeBody) or \
            body.offer != offer.id:
        raise VerificationError("the message does not take the offer the proof shows")

    def breaks(left: int | None) -> bool:
        try:
            check_take_terms(offer_hold(offer, left), body)
        except VerificationError:
            return True
        return False

    sells = offer_hold(offer).amount
    if remaining < body.buy.amount <= sells:
        raise VerificationError("the take asks for more than remained, which is no misconduct "
                                "(its bank may not have heard of a fill yet)")
    if not breaks(remaining):
        raise VerificationError("the take's terms agree with the offer")
    whole_only_part = offer.intent.body.min_fill is None and body.buy.amount != sells
    if whole_only_part or breaks(body.buy.amount):
        # a whole-only offer never has less left than it sells, so a part of it breaks it
        # whatever remained; else, even as all that remained, the terms alone break it
        how = "proven by the message and the offer"
    else:
        how = f"attested by {reporter}, which says {remaining} remained"
    return ProofSummary("misconduct", proof["culprit"],
                        f"{who} signed a take of {reporter}'s offer {offer.id} on terms the "
                        f"offer refuses ({how})")


def lock_conflict_proof(*, expired: Message, message: Message, culprit_key: str
                        ) -> dict[str, Any]:
    """The culprit's ``lock_expired`` answer and the claim of that lock its ``message``
    carries, as a proof document (checked before it is returned)."""
    proof = {"type": "lock_conflict", "culprit": culprit_key, "expired": expired.doc,
             "claim": message.entries["claim"].doc}
    verify_proof(proof)
    return proof


def double_settlement_proof(first: SignedEntry, second: SignedEntry) -> dict[str, Any]:
    """Two different settlements of one take, or two different claims of one lock, signed by
    one bank, as a proof document (checked before it is returned)."""
    proof = {"type": "double_settlement", "culprit": first.validator,
             "settlements": [first.doc, second.doc]}
    verify_proof(proof)
    return proof


# What a bank decides once of what it carries: a take (its maker's bank settles or fills it)
# and a lock (its payee's bank claims it: one credit per lock, as the verifier of §5 checks
# on one chain; two claims on two chains credit it twice).
_SETTLES = {"settle": "take", "fill": "take", "claim": "lock"}


def _verify_double_settlement(proof: dict[str, Any], names: Names) -> ProofSummary:
    """(1) exactly these fields, two settlements; (2) each an entry signed by the culprit, a
    settle or fill carrying one take, or a claim carrying one lock, as evidence; (3) the same
    take or lock, different entries."""
    if set(proof) != {"type", "culprit", "settlements"} or \
            not isinstance(proof["settlements"], list) or len(proof["settlements"]) != 2:
        raise VerificationError("a double_settlement proof has exactly type, culprit and two "
                                "settlements")
    try:
        a, b = (SignedEntry.from_dict(e) for e in proof["settlements"])
        settled = []
        for e in (a, b):
            e.verify(proof["culprit"])
            if e.kind not in _SETTLES or len(e.evidence) != 1:
                raise VerificationError(f"a {e.kind} with {len(e.evidence)} evidence entries "
                                        "is no settlement of one take nor claim of one lock")
            settled.append(e.evidence_entry(0))
    except (EncodingError, SignatureError) as e:
        raise VerificationError(f"the proof does not verify: {e}") from e
    first = settled[0]
    if {_SETTLES[a.kind], _SETTLES[b.kind]} != {first.kind} or first.id != settled[1].id or \
            a.id == b.id:
        raise VerificationError("the two entries are not two different settlements of one "
                                "take nor two different claims of one lock")
    return ProofSummary("double_settlement", proof["culprit"],
                        f"{_bank(proof['culprit'], names)} signed two different settlements "
                        f"({a.kind} {a.id}, {b.kind} {b.id}) of {first.kind} {first.id}")


_TAKE_CONTRADICTION = {"type", "culprit", "settlement", "request", "refusal"}
# What a maker's bank decides of a take on its offer when it refuses it. A bank refuses a
# message it does not believe (``bad_signature``, ``bad_request``: a record or a signature
# that fails) before it looks at what it decided of the take it carries, so such a refusal of
# a take it settled proves nothing (the twentieth tester framed an honest bank with one).
_TAKE_DECISIONS = frozenset({"outbid", "offer_closed", "unknown_offer", "expired"})


def take_contradiction_proof(settlement: SignedEntry, request: Message, refusal: Message
                             ) -> dict[str, Any]:
    """A maker's bank's settlement of a take and its refusal of the take message that carried
    that take, both its signatures, as a proof document (checked before it is returned)."""
    proof = {"type": "take_contradiction", "culprit": settlement.validator,
             "settlement": settlement.doc, "request": request.doc, "refusal": refusal.doc}
    verify_proof(proof)
    return proof


def _verify_take_contradiction(proof: dict[str, Any], names: Names) -> ProofSummary:
    """(1) exactly these fields; (2) the settlement an entry signed by the culprit, a settle or
    fill carrying one take, the refusal a ``refused`` message signed by the culprit; (3) the
    refusal answers the request (its ``ref`` is the request's id, between the same two banks),
    a ``take`` message carrying that very take, and refuses it as a decision of the take
    (_TAKE_DECISIONS). An honest maker's bank decides a take once, whatever message carries
    it, and settles it only if it accepted it."""
    if set(proof) != _TAKE_CONTRADICTION:
        raise VerificationError("a take_contradiction proof has exactly type, culprit, "
                                "settlement, request and refusal")
    try:
        settlement = SignedEntry.from_dict(proof["settlement"])
        settlement.verify(proof["culprit"])
        refusal = Message.from_dict(proof["refusal"])
        refusal.verify(proof["culprit"])
        request = Message.from_dict(proof["request"])
        if settlement.kind not in ("settle", "fill") or len(settlement.evidence) != 1:
            raise VerificationError(f"a {settlement.kind} with {len(settlement.evidence)} "
                                    "evidence entries is no settlement of one take")
        take = settlement.evidence_entry(0)
    except (EncodingError, SignatureError) as e:
        raise VerificationError(f"the proof does not verify: {e}") from e
    if refusal.type != "refused" or refusal.fields["ref"] != request.id or \
            request.type != "take" or request.entries["take"].id != take.id or \
            (refusal.sender, refusal.to) != (request.to, request.sender):
        raise VerificationError("the refusal does not answer the take message of the take "
                                "settled")
    if refusal.fields["error"] not in _TAKE_DECISIONS:
        raise VerificationError(f"a refusal {refusal.fields['error']} is no decision of the "
                                f"take; one of {sorted(_TAKE_DECISIONS)} is")
    return ProofSummary("take_contradiction", proof["culprit"],
                        f"{_bank(proof['culprit'], names)} signed a settlement "
                        f"({settlement.kind} {settlement.id}) of take {take.id} and refused "
                        f"that take ({refusal.fields['error']})")


_UNFAIR_SELECTION = {"type", "reporter", "reporter_name", "culprit", "offer", "request",
                     "pending", "refusal", "winners", "sig"}


def unfair_selection_proof(key: SigningKey, *, reporter: str, culprit_key: str,
                           offer: SignedEntry, request: Message, pending: Message,
                           refusal: Message, winners: list[SignedEntry]) -> dict[str, Any]:
    """The taker's bank's signed account of its take the maker's bank refused as ``outbid``
    though it filled takes that bid less (docs/adr/0009-best-taker.md)."""
    proof: dict[str, Any] = {
        "type": "unfair_selection", "reporter": key.public_key, "reporter_name": reporter,
        "culprit": culprit_key, "offer": offer.doc, "request": request.doc,
        "pending": pending.doc, "refusal": refusal.doc, "winners": [w.doc for w in winners]}
    proof["sig"] = key.sign("proof", proof)
    verify_proof(proof)
    return proof


def _verify_lock_conflict(proof: dict[str, Any], names: Names) -> ProofSummary:
    """(1) exactly these fields; (2) the answer is a ``lock_expired`` signed by the culprit,
    the claim an entry signed by the culprit; (3) the claim carries the lock the answer
    names."""
    if set(proof) != {"type", "culprit", "expired", "claim"}:
        raise VerificationError("a lock_conflict proof has exactly type, culprit, expired and "
                                "claim")
    try:
        expired = Message.from_dict(proof["expired"])
        expired.verify(proof["culprit"])
        claim = SignedEntry.from_dict(proof["claim"])
        claim.verify(proof["culprit"])
        lock = claimed_lock(claim)
    except (EncodingError, SignatureError) as e:
        raise VerificationError(f"the proof does not verify: {e}") from e
    if expired.type != "lock_expired" or expired.fields["lock"] != lock.id:
        raise VerificationError("the answer is not a lock_expired of the lock the claim "
                                "claims")
    return ProofSummary("lock_conflict", proof["culprit"],
                        f"{_bank(proof['culprit'], names)} answered lock {lock.id} expired "
                        f"and signed a claim of it on chain {claim.chain}")


def _verify_unfair_selection(proof: dict[str, Any], names: Names) -> ProofSummary:
    """An offer with a window ranks the takes that waited for it by what they give per unit,
    best first, against what remains; takes after it come after them. So every take filled at
    a rate strictly lower than ours was decided after ours, out of what remained at our turn:
    if such fills took at least what we asked (and we asked a part the offer allows), what
    remained at our turn was enough, and ``outbid`` was false."""
    # 1. the shape, and the reporter's signature over everything else.
    _signed_by_reporter(proof, _UNFAIR_SELECTION)
    culprit, reporter = proof["culprit"], proof["reporter_name"]
    try:
        offer = SignedEntry.from_dict(proof["offer"])
        offer.verify(culprit)
        request = Message.from_dict(proof["request"])
        request.verify(proof["reporter"])
        pending, refusal = (Message.from_dict(proof[k]) for k in ("pending", "refusal"))
        pending.verify(culprit)
        refusal.verify(culprit)
        if not isinstance(proof["winners"], list):
            raise EncodingError("winners is a list of the culprit's entries")
        winners = [SignedEntry.from_dict(w) for w in proof["winners"]]
        for winner in winners:
            winner.verify(culprit)
    except (EncodingError, SignatureError) as e:
        raise VerificationError(f"a part of the proof does not verify: {e}") from e
    # 2. the culprit's offer, with a window; the reporter's take of it, asking a part it allows.
    body = offer.intent.body if offer.intent is not None else None
    if offer.kind != "offer" or not isinstance(body, OfferBody) or body.window is None:
        raise VerificationError("the offer is not an offer with a window")
    take = request.entries.get("take")
    mine = None if take is None or take.intent is None else take.intent.body
    if request.type != "take" or request.sender != reporter or not isinstance(mine, TakeBody) \
            or mine.offer != offer.id:
        raise VerificationError("the request is not the reporter's take of the offer")
    try:
        check_take_terms(offer_hold(offer), mine)
    except VerificationError as e:
        raise VerificationError(f"the take does not fit the offer: {e.message}") from e
    if body.min_fill is not None and mine.buy.amount < body.min_fill:
        raise VerificationError("the take asks less than min_fill: it fits only all that "
                                "remains")
    # 3. the culprit kept it in the window (pending) and then refused it as outbid.
    closes = offer.time + body.window
    for answer, type_ in ((pending, "pending"), (refusal, "refused")):
        if answer.type != type_ or answer.fields.get("ref") != request.id or \
                answer.sender != request.to or answer.to != reporter:
            raise VerificationError(f"the {type_} is not the culprit's {type_} answer to "
                                    "the take")
    if pending.time >= closes:
        raise VerificationError("the take was pending only after the window closed")
    if refusal.fields.get("error") != "outbid":
        raise VerificationError("the take was refused, but not as outbid")
    # 4. fills of the offer, each of a take giving strictly less per unit, as much as we asked.
    seen: set[str] = set()
    taken = 0
    for winner in winners:
        evidence = winner.evidence_entry(0) if len(winner.evidence) == 1 else None
        theirs = None if evidence is None or evidence.intent is None else evidence.intent.body
        if winner.kind not in ("fill", "settle") or winner.chain != offer.chain_id or \
                not isinstance(theirs, TakeBody) or theirs.offer != offer.id or \
                evidence is None or evidence.id in seen:
            raise VerificationError("a winner is not a fill or settle of the offer, by a "
                                    "take of it not counted already")
        seen.add(evidence.id)
        if theirs.sell.amount * mine.buy.amount >= mine.sell.amount * theirs.buy.amount:
            raise VerificationError("a winner gave no less per unit than the take")
        taken += theirs.buy.amount
    if taken < mine.buy.amount:
        raise VerificationError("the winners that gave less took less than the take asked")
    who = names.get(culprit) or f"{request.to} ({culprit})"
    return ProofSummary("unfair_selection", culprit,
                        f"{who} refused {reporter}'s take of offer {offer.id} as outbid, "
                        f"yet filled takes that gave less per unit with at least the "
                        f"{mine.buy.amount} it asked (proven by the entries and answers)")


def _verify_plan_default(proof: dict[str, Any], names: Names) -> ProofSummary:
    """A bank that did not do its instruction of a plan (tchain.plans.proof)."""
    _signed_by_reporter(proof, PLAN_DEFAULT_FIELDS)
    _, summary = check_plan_default(proof)
    return ProofSummary("plan_default", proof["culprit"], summary)


def _verify_plan_contradiction(proof: dict[str, Any], names: Names) -> ProofSummary:
    """A payee bank that credited a plan's transfer and said nothing came (tchain.plans.proof)."""
    _signed_by_reporter(proof, PLAN_DEFAULT_FIELDS)
    _, summary = check_plan_contradiction(proof)
    return ProofSummary("plan_contradiction", proof["culprit"], summary)


def _verify_plan_equivocation(proof: dict[str, Any], names: Names) -> ProofSummary:
    """A bank's two different words on one question of a plan (tchain.plans.equivocation)."""
    _signed_by_reporter(proof, PLAN_DEFAULT_FIELDS)
    _, summary = check_plan_equivocation(proof)
    return ProofSummary("plan_equivocation", proof["culprit"], summary)


def _verify_route_unpaid(proof: dict[str, Any], names: Names) -> ProofSummary:
    """A correspondent that took a routed payment and passed it on to nobody
    (tchain.route_proof)."""
    _signed_by_reporter(proof, ROUTE_UNPAID_FIELDS)
    return ProofSummary("route_unpaid", proof["culprit"], check_route_unpaid(proof))


_VERIFIERS = {"equivocation": _verify_equivocation, "non_settlement": _verify_non_settlement,
              "misconduct": _verify_misconduct, "lock_conflict": _verify_lock_conflict,
              "unfair_selection": _verify_unfair_selection,
              "plan_default": _verify_plan_default,
              "plan_contradiction": _verify_plan_contradiction,
              "double_settlement": _verify_double_settlement,
              "plan_equivocation": _verify_plan_equivocation,
              "route_unpaid": _verify_route_unpaid,
              "take_contradiction": _verify_take_contradiction}


def verify_proof(proof: Any, *, names: Names | None = None) -> ProofSummary:
    """Check a proof document offline.

    Args:
        proof: the document.
        names: the names of the banks the reader knows, by key (a bank knows its own and its
            peers'): the summary names those banks by them, and any other by its key. What
            is checked does not depend on them.

    Raises:
        VerificationError: saying why the proof does not hold.
    """
    if not isinstance(proof, dict) or proof.get("type") not in _VERIFIERS:
        raise VerificationError(f"a proof is an object whose type is one of "
                                f"{sorted(_VERIFIERS)}")
    return _VERIFIERS[proof["type"]](proof, names or {})


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
