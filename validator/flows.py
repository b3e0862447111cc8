"""Cross-bank flows: what a bank records and queues, inside the write transaction that starts
or advances a flow.

Every message to a peer goes into the ``outbox`` database in the same write transaction as the
ledger change that caused it (DESIGN.md, Storage: atomic), so a crash can lose neither the hold
nor the message that will settle or release it. A sender delivers it later, outside any write
transaction, and retries with backoff until it is answered: a flow's message is never given up
(the peer's answer decides the flow), news of an offer is dropped once it is stale.

The records are the core's typed ones (tchain.flow_states: Flow, OutboxItem, OfferRecord),
and so is the table every change of a flow's state goes by.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from tchain.books import Move, opened
from tchain.flow_states import Flow, FlowType, LockRecord, OfferRecord, OutboxItem
from tchain.htlc import claimed_lock, lock_body
from tchain.keys import SigningKey
from tchain.messages import signed_message
from tchain.model import (
    ClaimBody,
    LockBody,
    OfferBody,
    PaymentBody,
    SignedEntry,
    SignedIntent,
    TakeBody,
)
from tchain.records import KeyRecord, make_record
from tchain.route import next_hop
from tchain.rules import BankIdentity
from tchain.selection import window_closes
from tchain.state import ChainState, closed_hold, settled_by
from validator.bids import keep_bid, release_local_bids
from validator.store import Reader, Writer

__all__ = ["broadcast", "close_offer", "enqueue", "fill_offer", "offer_record", "peer_names",
           "put_record", "reschedule", "signer", "start_flows", "start_held_flow"]

_NEWS_KEPT_MS = 300_000  # news of an offer's close is sent this long at most


def put_record(w: Writer, db: str, record_id: str,
               record: Flow | OfferRecord | OutboxItem | LockRecord) -> None:
    """Put a flow, offer or outbox record, with the times it will need the clock."""
    w.put_record(db, record_id, record.to_dict(), timers=record.timers().items())


def peer_names(r: Reader) -> frozenset[str]:
    return frozenset(p["name"] for p in r.peers())


def enqueue(w: Writer, key: SigningKey, sender: str, peer: str, type_: str, now: int, *,
            flow: str | None, give_up: int | None, first_try: int | None = None,
            **fields: Any) -> str:
    """Sign a message to ``peer`` and queue it; return its id. The sender first tries it at
    ``first_try`` (default ``now``): later when the caller tries it at once itself."""
    message = signed_message(key, type_, sender, peer, now, **fields)
    message_id, signed = message.id, message.doc
    put_record(w, "outbox", message_id, OutboxItem(peer, signed, 0,
                                             now if first_try is None else first_try,
                                             give_up, flow, None))
    return message_id


def reschedule(w: Writer, message_id: str, now: int, error: str, *,
               soon: int | None = None, waiting: bool = False) -> None:
    """Count a failed delivery, or a ``pending`` answer (``waiting``), and push the next try
    back (to ``soon`` at the latest)."""
    item = w.record("outbox", message_id)
    if item is None:
        return  # answered meanwhile by another sender
    after = OutboxItem.from_dict(item).failed(now, error, waiting=waiting)
    if soon is not None and soon < after.next_try:
        after = dataclasses.replace(after, next_try=soon)
    put_record(w, "outbox", message_id, after)


def offer_record(validator: str, offer: SignedEntry) -> OfferRecord:
    """How an offer is kept (ours or a peer's): the signed entry is its proof."""
    assert offer.intent is not None and isinstance(offer.intent.body, OfferBody)
    body = offer.intent.body
    return OfferRecord.opened(validator, offer.doc, expires=body.expires,
                              sell=str(body.sell.asset), buy=str(body.buy.asset))


def broadcast(w: Writer, key: SigningKey, sender: str, type_: str, now: int, *,
              give_up: int | None, first_try: int | None = None, **fields: Any) -> list[str]:
    """Queue the same message to every pinned peer."""
    return [enqueue(w, key, sender, peer, type_, now, flow=None, give_up=give_up,
                    first_try=first_try, **fields)
            for peer in sorted(peer_names(w))]


def start_flows(key: SigningKey, name: str, w: Writer, intent: SignedIntent,
                entries: tuple[SignedEntry, ...], after: ChainState, now: int,
                settle_deadline_ms: int, *, first_try: int) -> list[str]:
    """Record and queue what an accepted intent starts beyond this bank; return message ids
    (the sender tries them from ``first_try`` on: see enqueue). ``entries``: what it made,
    the owner's first; ``after``: the owner's chain after that first entry."""
    body = intent.body
    entry = entries[0]
    if entry.kind == "take" and isinstance(body, TakeBody) and body.validator == name:
        if len(entries) == 1:  # the offer's window is open: it waits to be ranked
            closes = window_closes(_offer_entry(w, body.offer))
            assert closes is not None
            keep_bid(w, body.offer, entry, now, closes)
            return []
        if entries[1].kind == "fill":  # here, a part: the rest stays open
            return fill_offer(key, name, w, entries[1], now, first_try=first_try)
        return close_offer(key, name, w, entries[1], now, first_try=first_try)  # here, done
    if entry.kind == "payment" and entry.id in after.holds.changes()[0] and \
            isinstance(body, PaymentBody):  # a hold it opened: a payment to another bank
        assert body.to_validator is not None  # (a routed one goes to its first correspondent)
        return [start_held_flow(key, name, w, FlowType.TRANSFER, next_hop(body), entry, after,
                                 now + settle_deadline_ms, now, first_try,
                                 extra={"payee": body.to},
                                 hold=entry, payer=signer(key, name, after),
                                 kyc_required=bool(after.params.get("kyc_recipients")))]
    if entry.kind == "take" and isinstance(body, TakeBody):
        closes = window_closes(_offer_entry(w, body.offer)) or now
        return [start_held_flow(key, name, w, FlowType.TAKE, body.validator, entry, after,
                                max(now, closes) + settle_deadline_ms, now, first_try,
                                extra={"offer": body.offer,
                                       "maker_chain": _offer_chain(w, body.offer)},
                                take=entry,
                                taker=signer(key, name, after))]
    if entry.kind == "offer" and isinstance(body, OfferBody):
        put_record(w, "offers", entry.id, offer_record(name, entry))
        return broadcast(w, key, name, "offer", now, give_up=body.expires,
                         first_try=first_try, offer=entry)
    if entry.kind == "cancel":
        return close_offer(key, name, w, entry, now, first_try=first_try)
    if entry.kind == "lock" and isinstance(body, LockBody):
        if body.to_validator in (None, name):  # both sides here: this bank decides at expiry
            put_record(w, "locks", entry.id, LockRecord.opened(name, entry))
            return []
        return [start_held_flow(key, name, w, FlowType.LOCK, body.to_validator, entry, after,
                                 body.expires, now, first_try, extra={"payee": body.to},
                                 lock=entry, locker=signer(key, name, after))]
    if entry.kind == "claim" and isinstance(body, ClaimBody):
        return _claimed(key, name, w, entry, after, now, first_try)
    return []


def _claimed(key: SigningKey, name: str, w: Writer, claim: SignedEntry, after: ChainState,
             now: int, first_try: int) -> list[str]:
    """Our customer claimed a lock (written in this transaction): its first decision, kept;
    a peer's lock crossed to us (our position with the peer, as a credit moves it), and its
    bank is told, with our payee's key record, until it answers."""
    lock = claimed_lock(claim)
    stored = w.record("locks", lock.id)
    assert stored is not None, f"lock {lock.id} claimed, not kept"
    record = LockRecord.from_dict(stored)
    put_record(w, "locks", lock.id, record.claimed(claim))
    if record.validator == name:
        return []
    body = lock_body(lock)
    w.move(record.validator, Move(str(body.asset), held=-body.amount))
    return [enqueue(w, key, name, record.validator, "claimed", now, flow=None, give_up=None,
                    first_try=first_try, claim=claim, claimant=signer(key, name, after))]


def signer(key: SigningKey, name: str, chain: ChainState) -> KeyRecord:
    """Our signed key record of the chain whose owner signed the intent we send a peer (made
    once for each payer seen lately: the same record goes with each of its payments)."""
    made = (key.public_key, name, chain.chain, chain.owner, chain.address)
    record = _RECORDS.get(made)
    if record is None:
        if len(_RECORDS) >= _RECORDS_KEPT:
            _RECORDS.clear()
        record = _RECORDS[made] = KeyRecord.from_dict(make_record(
            key, address=chain.address, owner=chain.owner, chain=chain.chain, validator=name))
    return record


_RECORDS: dict[tuple[str, str, str, str, str], KeyRecord] = {}
_RECORDS_KEPT = 4096


def start_held_flow(key: SigningKey, name: str, w: Writer, type_: FlowType, peer: str,
                     entry: SignedEntry, after: ChainState, deadline: int, now: int,
                     first_try: int, *, extra: dict[str, Any], **fields: Any) -> str:
    """Queue the message that asks ``peer`` to do its side of a hold, record the flow, and set
    aside in our position with the peer what the hold will move (tchain.books)."""
    for move in opened(after.holds[entry.id]):
        w.move(peer, move)
    message = enqueue(w, key, name, peer, type_.value, now, flow=entry.id, give_up=None,
                      first_try=first_try, deadline=deadline, **fields)
    put_record(w, "flows", entry.id, Flow.start(type_, chain=after.chain, height=entry.height,
                                          peer=peer, deadline=deadline, message=message,
                                          **extra))
    return message


def fill_offer(key: SigningKey, name: str, w: Writer, fill: SignedEntry, now: int, *,
               first_try: int | None = None) -> list[str]:
    """Our offer was filled in part by ``fill`` (written in this transaction): record what
    remains of it, as its hold says, and tell the peers (docs/adr/0007-partial-fills.md)."""
    offer_id = settled_by(fill.evidence_entry(0))
    maker = w.state(fill.chain_id, (offer_id,))
    hold = None if maker is None else maker.holds.get(offer_id)
    record = w.record("offers", offer_id)
    assert hold is not None and record is not None, f"offer {offer_id} filled, not open"
    put_record(w, "offers", offer_id, OfferRecord.from_dict(record).filled(hold.amount))
    return broadcast(w, key, name, "offer_filled", now, give_up=now + _NEWS_KEPT_MS,
                     first_try=first_try, offer=offer_id, entry=fill,
                     remaining=str(hold.amount))


def close_offer(key: SigningKey, name: str, w: Writer, closing: SignedEntry, now: int, *,
                first_try: int | None = None) -> list[str]:
    """Mark our offer closed by ``closing`` (cancel, release or settle) and tell the peers."""
    offer_id = closed_hold(closing)
    assert offer_id is not None
    record = w.record("offers", offer_id)
    if record is None:
        return []
    release_local_bids(BankIdentity(key, name), w, OfferRecord.from_dict(record), now)
    put_record(w, "offers", offer_id, OfferRecord.from_dict(record).closed())
    return broadcast(w, key, name, "offer_closed", now, give_up=now + _NEWS_KEPT_MS,
                     first_try=first_try, offer=offer_id, entry=closing)


def _offer_chain(w: Writer, offer_id: str) -> str:
    """The chain of a peer's offer our customer takes: its settlement must be on it."""
    return _offer_entry(w, offer_id).chain_id


def _offer_entry(w: Writer, offer_id: str) -> SignedEntry:
    """The offer our customer takes. The ledger took it from this record in this same write
    (Ledger._offer_for)."""
    stored = w.record("offers", offer_id)
    assert stored is not None, f"offer {offer_id} taken but not kept"
    offer = OfferRecord.from_dict(stored).offer
    assert offer is not None
    return SignedEntry.trusted(offer)

