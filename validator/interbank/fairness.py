"""The taker's bank's watch on a peer's selection (docs/adr/0009-best-taker.md): for a peer's
offer with a window, it keeps what it would take to prove an unfair one, and proves it as
soon as it can (tchain.proofs, ``unfair_selection``).

What it keeps, in the write that brings it: the peer's first ``pending`` answer to our take
(in the take's flow: it shows the take waited in the window), and, when the peer refuses the
take as ``outbid``, our take message, that ``pending`` and the refusal (in the offer's record);
the fills and settles of the offer its news brings (at most MAX_WINNERS). Each time one of
these comes, it checks whether fills of takes that gave strictly less per unit than an outbid
take of ours took at least what it asked; if so, it keeps the signed proof (with the others,
``GET /v1/proofs``), once per take.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from tchain.errors import VerificationError
from tchain.flow_states import ABSENT, Flow, OfferRecord
from tchain.messages import Message
from tchain.model import SignedEntry, TakeBody
from tchain.proofs import unfair_selection_proof
from tchain.rules import BankIdentity
from tchain.selection import window_closes
from tchain.state import taken_by
from validator.flows import put_record
from validator.store import Writer

__all__ = ["MAX_WINNERS", "keep_pending", "note_outbid", "note_winner"]

MAX_WINNERS = 100  # fills of one peer's offer kept as possible evidence


def keep_pending(w: Writer, flow_id: str, flow: Flow, answer: Message) -> None:
    """Keep the peer's first ``pending`` answer to our take (later ones say no more)."""
    if flow.answers is ABSENT:
        put_record(w, "flows", flow_id, dataclasses.replace(flow, answers=(answer.doc,)))


def note_outbid(bank: BankIdentity, w: Writer, flow: Flow, request: dict[str, Any],
                refusal: Message) -> None:
    """Our take (``request``, the message we sent) was refused as ``outbid``."""
    record = _windowed(w, flow.offer)
    if refusal.fields.get("error") != "outbid" or record is None or \
            flow.answers is ABSENT or not flow.answers:
        return
    lost = {"request": request, "pending": flow.answers[0], "refusal": refusal.doc}
    _prove(bank, w, str(flow.offer), dataclasses.replace(record, outbid=(*record.outbid, lost)))


def note_winner(bank: BankIdentity, w: Writer, offer_id: str, entry: SignedEntry) -> None:
    """News of a fill or settle of a peer's offer (its evidence a take of it)."""
    record = _windowed(w, offer_id)
    try:
        take = taken_by(entry.evidence_entry(0)) if len(entry.evidence) == 1 else None
    except VerificationError:
        take = None
    if record is None or record.offer is None or take is None or take.offer != offer_id or \
            entry.kind not in ("fill", "settle") or \
            entry.chain != SignedEntry.trusted(record.offer).chain_id or \
            len(record.winners) >= MAX_WINNERS or entry.doc in record.winners:
        return
    _prove(bank, w, offer_id, dataclasses.replace(record, winners=(*record.winners, entry.doc)))


def _windowed(w: Writer, offer_id: str | object) -> OfferRecord | None:
    """The record of a peer's offer with a window, if that is what ``offer_id`` names."""
    stored = w.record("offers", offer_id) if isinstance(offer_id, str) else None
    record = None if stored is None else OfferRecord.from_dict(stored)
    if record is None or record.offer is None or \
            window_closes(SignedEntry.trusted(record.offer)) is None:
        return None
    return record


def _prove(bank: BankIdentity, w: Writer, offer_id: str, record: OfferRecord) -> None:
    """Keep ``record``, and a proof for each outbid take of ours its winners show unfair."""
    put_record(w, "offers", offer_id, record)
    assert record.offer is not None
    offer = SignedEntry.trusted(record.offer)
    winners = [SignedEntry.from_dict(doc) for doc in record.winners]
    peer = w.peer(record.validator)
    if peer is None:
        return
    for lost in record.outbid:
        request = Message.from_dict(lost["request"])
        take = request.entries["take"]
        mine = take.intent.body if take.intent is not None else None
        assert isinstance(mine, TakeBody)
        worse = [e for e in winners if _gives_less(e, mine)]
        if w.record("proofs", take.id) is not None or \
                sum(_take(e).buy.amount for e in worse) < mine.buy.amount:
            continue
        try:
            proof = unfair_selection_proof(
                bank.key, reporter=bank.name, culprit_key=peer["key"], offer=offer,
                request=request, pending=Message.from_dict(lost["pending"]),
                refusal=Message.from_dict(lost["refusal"]), winners=worse)
        except VerificationError:
            continue  # it does not prove it (a pending after the close, a part below min_fill)
        w.put_record("proofs", take.id, proof)


def _take(entry: SignedEntry) -> TakeBody:
    take = taken_by(entry.evidence_entry(0))
    assert take is not None
    return take


def _gives_less(entry: SignedEntry, mine: TakeBody) -> bool:
    """Whether the take a winner settled gave strictly less per unit than ``mine``."""
    theirs = _take(entry)
    return theirs.sell.amount * mine.buy.amount < mine.sell.amount * theirs.buy.amount
