"""The clock's part: close expired offers, record a non-settlement proof when a peer has not
settled an exchange by its deadline, complete key recoveries, forget old answers, give up
stale news.

A hold waiting on a peer (a transfer or a take) is never released on our clock alone: the peer
may have done its side just before the deadline with every answer lost since. The message is
re-sent until the peer answers, and the peer's first answer to a message is final (kept in its
inbox): done before the deadline, or refused (``expired``) after it. So both ledgers agree once
the network heals; a peer that never comes back leaves the hold open and visible in the audit.
"""

from __future__ import annotations

from typing import Any

from tchain.flow_states import (
    ABSENT,
    Flow,
    FlowEvent,
    FlowType,
    OfferRecord,
    OutboxItem,
    timers_of,
)
from tchain.model import SignedEntry
from tchain.proofs import non_settlement_proof
from tchain.rules import (
    release_hold,
)
from validator.flows import close_offer, put_record
from validator.interbank.base import Part
from validator.interbank.locks import ask_lock_status, expire_lock
from validator.store import Reader, Writer

__all__ = ["Deadlines"]


class Deadlines(Part):
    """The deadlines of flows, offers and outbox messages (see the module docstring)."""

    def due(self) -> list[str]:
        """Outbox messages whose next try is due, oldest first (found through their
        ``sends`` timers: a timer whose message went or was put off is stale, see tick)."""
        now = self.ledger.clock()
        with self.ledger.store.read() as r:
            return _sends(r, now)[0]

    def tick(self) -> list[str]:
        """Apply every deadline that has passed; return a line for each thing done.

        A read transaction finds what is due first: the sender ticks every 200 ms, and an idle
        bank must not take the write lock from its workers that often. Both find what is due
        through the store's timers, so a tick costs what is due, not every flow ever kept.
        """
        now = self.ledger.clock()
        with self.ledger.store.read() as r:
            if r.meta(_TIMERS_KEPT) is not None and not _sends(r, now)[1] and \
                    not any(r.due(timer, now) for timer in _DEADLINES):
                return []

        def work(w: Writer) -> list[str]:
            if w.meta(_TIMERS_KEPT) is None:
                _keep_timers(w)
            for message_id, at in _sends(w, now)[1]:
                w.clear_due("sends", message_id, at)
            done = self.ledger.complete_recoveries(w, now)
            for message_id, at in w.due("answers", now):
                w.forget_answer(message_id, at)
            for flow_id, stored in self._due(w, "flows", now):
                flow = Flow.from_dict(stored)
                if flow.type is FlowType.LOCK and _flow_expired(flow, now):
                    done.append(ask_lock_status(self, w, flow_id, flow, now))
                elif _flow_expired(flow, now):
                    done.append(self._expire_flow(w, flow_id, flow))
            for offer_id, stored in self._due(w, "offers", now):
                record = OfferRecord.from_dict(stored)
                if now < record.expires:
                    continue  # a time set before, for a record put again since
                if record.validator != self.bank.name:
                    w.delete_record("offers", offer_id)  # a peer's, nobody may take it now
                elif record.is_open and record.offer is not None:
                    offer = SignedEntry.from_dict(record.offer)
                    chain = self._state(w, offer.chain, offer_id)
                    entry = self._commit(w, release_hold(self.bank, chain, offer, now))
                    close_offer(self.bank.key, self.bank.name, w, entry, now)
                    done.append(f"offer {offer_id} expired and released")
            for lock_id, _ in self._due(w, "locks", now):
                if (expired := expire_lock(self, w, lock_id, now)) is not None:
                    done.append(expired)
            for message_id, stored in self._due(w, "outbox", now):
                item = OutboxItem.from_dict(stored)
                if _abandoned(item, now):
                    w.delete_record("outbox", message_id)
                    done.append(f"gave up on {item.type} to {item.peer}")
            return done

        return self.ledger.store.write(work)

    @staticmethod
    def _due(w: Writer, db: str, now: int) -> list[tuple[str, dict[str, Any]]]:
        """The records of ``db`` whose deadline timer (named as the database) has come, each
        timer cleared as it is seen to (a record that changed since was given a new time
        when it was put again)."""
        found = []
        for record_id, at in w.due(db, now):
            w.clear_due(db, record_id, at)
            record = w.record(db, record_id)
            if record is not None:
                found.append((record_id, record))
        return found

    def _expire_flow(self, w: Writer, flow_id: str, flow: Flow) -> str:
        """An exchange the peer did not settle by its deadline: record the proof. The settle
        message stays in the outbox: a peer that settles late still completes the exchange."""
        proof = self._non_settlement(w, flow)
        put_record(w, "flows", flow_id, flow.moved(
            FlowEvent.DEADLINE_PASSED, proof=proof,
            reason=f"{flow.peer} did not settle by {flow.deadline}"))
        return f"exchange {flow_id}: {flow.peer} did not settle; proof {proof}"

    def _non_settlement(self, w: Writer, flow: Flow) -> str:
        assert flow.offer is not ABSENT and flow.take is not ABSENT \
            and flow.answers is not ABSENT
        record = w.record("offers", flow.offer)
        assert record is not None
        proof = non_settlement_proof(
            self.bank.key, offer=SignedEntry.from_dict(record["offer"]),
            take=SignedEntry.from_dict(flow.take),
            settlement=self._own_entry(w, flow.chain, flow.height),
            deadline=flow.deadline, answers=list(flow.answers))
        proof_id = SignedEntry.from_dict(flow.take).id
        w.put_record("proofs", proof_id, proof)
        return proof_id


def _past(timer: str, record: Flow | OutboxItem, now: int) -> bool:
    """Whether the record's time on ``timer`` (see its ``timers``) has come."""
    at = record.timers().get(timer)
    return at is not None and now >= at



def _flow_expired(flow: Flow, now: int) -> bool:
    """An exchange the peer did not settle by its deadline (holds waiting on a peer never
    expire here: see the module docstring)."""
    return _past("flows", flow, now)


def _abandoned(item: OutboxItem, now: int) -> bool:
    """A message of no flow (an offer's news) past the time it is worth sending."""
    return _past("outbox", item, now)


def _sends(r: Reader, now: int) -> tuple[list[str], list[tuple[str, int]]]:
    """The send times that have come: the messages due now, oldest first, and the stale
    times, of messages sent since or put off (their record is gone, or has another next
    try), which the tick clears."""
    due: list[str] = []
    stale: list[tuple[str, int]] = []
    for mid, at in r.due("sends", now):
        item = r.record("outbox", mid)
        if item is not None and item["next_try"] == at:
            due.append(mid)
        else:
            stale.append((mid, at))
    return due, stale


# the timers a tick sees to (the sender sees to "sends")
_DEADLINES = ("flows", "offers", "outbox", "answers", "recoveries", "locks")
_TIMERS_KEPT = "timers"  # meta key: the timers index covers every record (see _keep_timers)


def _keep_timers(w: Writer) -> None:
    """Give every flow, offer and outbox record its timers: once, for a store kept before
    timers were (from then on every record is put with its times)."""
    for db in ("flows", "offers", "outbox"):
        for record_id, record in w.records(db):
            w.put_record(db, record_id, record, timers=timers_of(db, record).items())
    w.put_meta(_TIMERS_KEPT, "1")
