"""The bank's side of every validator-to-validator flow, applied to the store.

Three entry points, each one write transaction, none doing network I/O (the validator's sender
and its peer endpoint do that around them):

- :meth:`Interbank.receive`: a pinned peer's signed message in, our signed answer out. The
  answer is kept by message id before the transaction commits, so a message delivered twice
  gets the same bytes back and changes nothing the second time.
- :meth:`Interbank.apply_answer`: the peer's signed answer to a message of our outbox: settle
  or release the hold the message is about, and drop the message from the outbox.
- :meth:`Interbank.tick`: the clock's part: close expired offers, and record a
  non-settlement proof when a peer has not settled an exchange by its deadline.

A hold waiting on a peer (a transfer or a take) is never released on our clock alone: the peer
may have done its side just before the deadline with every answer lost since. The message is
re-sent until the peer answers, and the peer's first answer to a message is final (kept in its
inbox): done before the deadline, or refused (``expired``) after it. So both ledgers agree once
the network heals; a peer that never comes back leaves the hold open and visible in the audit.

The winner among takes racing for one offer is the first take this bank commits: writes are
serialised by LMDB, the first settles the offer and closes it, every later one is refused with
``offer_closed`` and its bank releases its taker's hold.
"""

from __future__ import annotations

from typing import Any

from tchain.flow_states import OfferRecord
from validator.interbank.answers import Answers
from validator.interbank.base import FAULTS
from validator.interbank.deadlines import Deadlines
from validator.interbank.inbox import PeerInbox
from validator.ledger import Ledger
from validator.plans import Plans

__all__ = ["FAULTS", "Interbank"]


class Interbank:
    """Cross-bank flows over one bank's ledger: the peer inbox, the answers to our outbox and
    the deadlines, each a small class of its own (validator/interbank/), and the reads.

    Args:
        ledger: the bank's ledger (its store, key, name, clock and settle deadline).
        fault: ``"skip-settle"`` makes this bank a cheat for demonstrations and tests: it
            accepts takes and never settles them; ``"keep-routed"`` answers routed payments
            ``credited`` without handing them on (validator.route).
    """

    def __init__(self, ledger: Ledger, *, fault: str | None = None) -> None:
        self.inbox = PeerInbox(ledger, fault=fault)
        self.answers = Answers(ledger, fault=fault)
        self.deadlines = Deadlines(ledger, fault=fault)
        self.ledger = ledger
        self.fault = fault
        self.bank = ledger.bank
        # what the sender and the peer endpoint call
        self.receive = self.inbox.receive
        self.receive_many = self.inbox.receive_many
        self.apply_answer = self.answers.apply_answer
        self.apply_answers = self.answers.apply_answers
        self.delivery_failed = self.answers.delivery_failed
        self.deliveries_failed = self.answers.deliveries_failed
        self.due = self.deadlines.due
        self.plans = Plans(ledger)

    def tick(self) -> list[str]:
        """Apply every deadline that has passed, the flows' and the plans'."""
        return self.deadlines.tick() + self.plans.tick()

    def offers(self, asset: str | None, after: str | None = None,
               limit: int = 1000) -> list[dict[str, Any]]:
        """Open offers known here that sell or buy ``asset`` (all when None), up to ``limit``
        in id order from after ``after``: read from their index, so a page costs what it
        lists (found by the outside attacker: reading every offer ever seen, a public
        listing stalled the bank)."""
        now = self.ledger.clock()
        with self.ledger.store.read() as r:
            records = [(oid, r.record("offers", oid))
                       for oid in r.open_offers(asset, after, limit)]
        kept = [(oid, OfferRecord.from_dict(rec)) for oid, rec in records if rec is not None]
        return [{"id": oid, "validator": rec.validator, "offer": rec.offer,
                 "remaining": _remaining(rec)}
                for oid, rec in kept if rec.expires > now]

    def proofs(self) -> list[dict[str, Any]]:
        with self.ledger.store.read() as r:
            return [proof for _, proof in r.records("proofs")]

    def flow(self, flow_id: str) -> dict[str, Any] | None:
        """A flow as stored (Flow.from_dict reads it)."""
        with self.ledger.store.read() as r:
            return r.record("flows", flow_id)


def _remaining(record: OfferRecord) -> str:
    """What is left of a listed offer: all it sells, or less once a fill is known."""
    if record.remaining is not None:
        return str(record.remaining)
    assert record.offer is not None
    return str(record.offer["entry"]["intent"]["intent"]["body"]["sell"]["amount"])
