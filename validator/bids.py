"""Takes of our offers that wait for the offer's selection window (docs/adr/0009-best-taker.md):
kept in the offer's record (tchain.flow_states.OfferRecord.bids) in the write transaction that
received them, until validator.interbank.windows ranks them when the window closes.

A peer's take is kept as the signed message that carried it, so that its answer is the answer
to that message, kept by its id as every other; our customer's take as where its entry is.
A take kept once is not kept again when its bank asks again (it keeps asking until a final
answer), and keeps the time it first came: its place in the ranking.
"""

from __future__ import annotations

from typing import Any

from tchain.errors import ConflictError, ExpiredError, LimitExceededError, OfferClosedError
from tchain.flow_states import ABSENT, CLOCK_MARGIN_MS, Flow, OfferRecord
from tchain.model import SignedEntry
from tchain.rules import BankIdentity, release_hold
from tchain.selection import window_closes
from validator.store import Reader, Writer

__all__ = ["MAX_BIDS_PER_PEER", "ask_again_at", "keep_bid", "release_local_bids"]

MAX_BIDS_PER_PEER = 100  # a peer's takes waiting for one offer: each is kept in its record
_DECIDED_WITHIN_MS = 10_000  # after a window closes, its bank decides soon: ask often till then
_AFTER_CLOSE_MS = 500


def ask_again_at(r: Reader, flow: Flow, now: int) -> int | None:
    """When our take of a peer's offer, answered ``pending``, is asked again at the latest:
    just after the offer's window closes (its bank decides then), not a backoff later; None
    (the backoff) once the close is long past."""
    stored = None if flow.offer is ABSENT else r.record("offers", flow.offer)
    offer = None if stored is None else OfferRecord.from_dict(stored).offer
    closes = None if offer is None else window_closes(SignedEntry.trusted(offer))
    if closes is None or now > closes + _DECIDED_WITHIN_MS:
        return None
    return max(closes + _AFTER_CLOSE_MS, now + _AFTER_CLOSE_MS // 2)


def keep_bid(w: Writer, offer_id: str, take: SignedEntry, now: int, closes: int, *,
             deadline: int | None = None, message: dict[str, Any] | None = None) -> None:
    """Keep ``take`` (a peer's, carried by ``message`` with ``deadline``; else our customer's)
    until the window of ``offer_id`` closes at ``closes``.

    Raises:
        ExpiredError: the peer's deadline comes before the window closes (and the decision
            after it): its take could never be decided in time, so it is refused at once.
        OfferClosedError: the offer is not open here.
        ConflictError: the peer's take of the same intent, another entry, waits already.
        LimitExceededError: the peer has MAX_BIDS_PER_PEER takes waiting for the offer
            already (a bank may sign takes of customers it makes up: found by the attack of
            tests/hostile/test_lying_bids.py, the record grew without end).
    """
    if deadline is not None and deadline < closes + CLOCK_MARGIN_MS:
        raise ExpiredError(f"the take's deadline {deadline} comes before offer {offer_id} "
                           f"ranks its takes at {closes}")
    stored = w.record("offers", offer_id)
    if stored is None or not OfferRecord.from_dict(stored).is_open:
        raise OfferClosedError(f"offer {offer_id} is no longer open")
    record = OfferRecord.from_dict(stored)
    if any(bid["take"] == take.id for bid in record.bids):
        return  # asked again: it keeps its place
    if message is not None and take.intent is not None:
        _one_take_per_intent(record, take, str(message["message"]["from"]))
    if message is not None and sum(_sender(bid) == message["message"]["from"]
                                   for bid in record.bids) >= MAX_BIDS_PER_PEER:
        raise LimitExceededError(f"{message['message']['from']} has {MAX_BIDS_PER_PEER} takes "
                                 f"of offer {offer_id} waiting already",
                                 limit=str(MAX_BIDS_PER_PEER))
    bid: dict[str, Any] = {"at": now, "take": take.id}
    if message is not None:
        bid["message"] = message
    else:
        bid.update(chain=take.chain_id, height=take.height)
    w.put_record("offers", offer_id, record.with_bid(bid, closes).to_dict(),
                 timers=[("offers", closes)])


def _one_take_per_intent(record: OfferRecord, take: SignedEntry, sender: str) -> None:
    """A peer's take whose customer's intent waits here already in another take of that
    peer is refused ``conflict``: one intent, one take (attack 18: the second was ranked
    too, and one of the two refused ``outbid`` by the other, "better takes took all of it").

    Raises:
        ConflictError: another take of the intent waits.
    """
    assert take.intent is not None
    for bid in record.bids:
        if _sender(bid) != sender:
            continue
        waiting = SignedEntry.trusted(bid["message"]["message"]["take"])
        if waiting.intent is not None and waiting.intent.id == take.intent.id:
            raise ConflictError(f"this intent waits here already, in take {waiting.id}")


def _sender(bid: dict[str, Any]) -> str | None:
    """The peer whose take a bid is (None: our customer's)."""
    return None if "message" not in bid else str(bid["message"]["message"]["from"])


def release_local_bids(bank: BankIdentity, w: Writer, record: OfferRecord, now: int
                       ) -> list[SignedEntry]:
    """Give our customers' waiting takes of an offer that closes back their holds (a peer's
    take is refused ``offer_closed`` when its bank asks again: the record says closed)."""
    released = []
    for bid in record.bids:
        if "message" in bid:
            continue
        raw = w.entry(bid["chain"], bid["height"])
        taker = w.state(bid["chain"], (bid["take"],))
        if raw is None or taker is None or bid["take"] not in taker.holds:
            continue
        outcome = release_hold(bank, taker, SignedEntry.from_bytes(raw), now)
        [entry], [state] = outcome.entries, outcome.states
        w.append(entry, state)
        released.append(entry)
    return released
