"""Cross-bank flows as typed records, and the one table every change of a flow's state goes by.

A bank keeps three kinds of record for what it does with its peers (validator/flows.py keeps
them in the store, validator/interbank/ moves them on):

  Flow        a cross-bank flow, keyed by the id of the entry that opened it:
                transfer  we hold a payer's payment for a peer's payee
                take      we hold a taker's side of a peer's offer
                exchange  we settled our maker's offer for a peer's take
                lock      we hold a payer's lock for a peer's payee (tchain.htlc)
  OutboxItem  a signed message waiting for its peer
  OfferRecord an offer known here, ours or a peer's
  LockRecord  a hash-time lock for a customer of ours (tchain.htlc), and its one decision

A flow's state changes only through :meth:`Flow.moved`, which looks the move up in
:data:`TRANSITIONS` and refuses any other with :class:`FlowTransitionError` (our bug, never a
peer's: the engine checks what a peer may ask before it moves a flow). As h11's ``_state.py``
does for HTTP, the table is the whole state machine:

  transfer  pending --credited--> settled          pending --refused--> released
  take      pending --accepted--> accepted --settled--> settled
            pending --settled--> settled           pending --refused--> released
  exchange  awaiting_peer --settled--> settled     awaiting_peer --deadline_passed--> defaulted
            defaulted --settled--> settled (late: the proof is dropped)
  lock      pending --settled--> settled (the payee's bank's claim)
            pending --deadline_passed--> awaiting_peer (expired here: we ask the payee's bank)
            awaiting_peer --settled--> settled     awaiting_peer --refused--> released

The enums are of ``str``, and every record reads and writes the same dict it always did, so
the stored bytes do not change.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Any

from tchain.htlc import lock_body
from tchain.model import SignedEntry

__all__ = [
    "ABSENT",
    "CLOCK_MARGIN_MS",
    "INITIAL",
    "IN_FLIGHT",
    "TRANSITIONS",
    "UNSETTLED",
    "WAITING_ON_PEER",
    "Flow",
    "FlowEvent",
    "FlowState",
    "FlowTransitionError",
    "FlowType",
    "LockRecord",
    "LockState",
    "OfferRecord",
    "OfferState",
    "OutboxItem",
    "backoff_ms",
    "next_state",
    "timers_of",
]

CLOCK_MARGIN_MS = 2_000  # how far apart two banks' clocks may be: news is dropped this late
_FIRST_RETRY_MS = 250
_MAX_RETRY_MS = 30_000


class FlowType(StrEnum):
    TRANSFER = "transfer"
    TAKE = "take"
    EXCHANGE = "exchange"
    LOCK = "lock"


class FlowState(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    AWAITING_PEER = "awaiting_peer"
    SETTLED = "settled"
    RELEASED = "released"
    DEFAULTED = "defaulted"


class FlowEvent(StrEnum):
    """What happens to a flow: a peer's answer, or our clock."""

    CREDITED = "credited"  # the payee's bank credited our payer's payment
    REFUSED = "refused"  # the peer refused the transfer or take: the hold is released
    ACCEPTED = "accepted"  # the maker's bank took our take (and we do not settle yet)
    SETTLED = "settled"  # the other side is settled (take: by the maker's bank; exchange: by
    #                      the taker's bank, maybe after the deadline)
    DEADLINE_PASSED = "deadline_passed"  # an exchange the peer did not settle in time


class OfferState(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class FlowTransitionError(RuntimeError):
    """A move the flow table does not allow: our bug, never a peer's or a customer's."""


# The state a flow starts in, by its type.
INITIAL: Mapping[FlowType, FlowState] = {
    FlowType.TRANSFER: FlowState.PENDING,
    FlowType.TAKE: FlowState.PENDING,
    FlowType.EXCHANGE: FlowState.AWAITING_PEER,
    FlowType.LOCK: FlowState.PENDING,
}

# (type, state, event) -> the state after it. Every other triple is refused.
TRANSITIONS: Mapping[tuple[FlowType, FlowState, FlowEvent], FlowState] = {
    (FlowType.TRANSFER, FlowState.PENDING, FlowEvent.CREDITED): FlowState.SETTLED,
    (FlowType.TRANSFER, FlowState.PENDING, FlowEvent.REFUSED): FlowState.RELEASED,
    (FlowType.TAKE, FlowState.PENDING, FlowEvent.ACCEPTED): FlowState.ACCEPTED,
    (FlowType.TAKE, FlowState.PENDING, FlowEvent.SETTLED): FlowState.SETTLED,
    (FlowType.TAKE, FlowState.ACCEPTED, FlowEvent.SETTLED): FlowState.SETTLED,
    (FlowType.TAKE, FlowState.PENDING, FlowEvent.REFUSED): FlowState.RELEASED,
    (FlowType.EXCHANGE, FlowState.AWAITING_PEER, FlowEvent.SETTLED): FlowState.SETTLED,
    (FlowType.EXCHANGE, FlowState.AWAITING_PEER, FlowEvent.DEADLINE_PASSED):
        FlowState.DEFAULTED,
    (FlowType.EXCHANGE, FlowState.DEFAULTED, FlowEvent.SETTLED): FlowState.SETTLED,
    (FlowType.LOCK, FlowState.PENDING, FlowEvent.SETTLED): FlowState.SETTLED,
    (FlowType.LOCK, FlowState.PENDING, FlowEvent.DEADLINE_PASSED): FlowState.AWAITING_PEER,
    (FlowType.LOCK, FlowState.AWAITING_PEER, FlowEvent.SETTLED): FlowState.SETTLED,
    (FlowType.LOCK, FlowState.AWAITING_PEER, FlowEvent.REFUSED): FlowState.RELEASED,
}

# A transfer, take or lock whose hold is open and waits on the peer (a lock past its expiry
# waits on the payee's bank's answer, awaiting_peer: Flow.waiting_on_peer).
WAITING_ON_PEER = frozenset({FlowState.PENDING, FlowState.ACCEPTED})
# Not settled yet: the hold waits, or the peer has not settled its side of an exchange.
UNSETTLED = WAITING_ON_PEER | {FlowState.AWAITING_PEER}
# Money still between the two banks (a defaulted exchange may yet be settled late).
IN_FLIGHT = UNSETTLED | {FlowState.DEFAULTED}


def next_state(type_: FlowType, state: FlowState, event: FlowEvent) -> FlowState:
    """The state a flow of ``type_`` in ``state`` moves to on ``event``.

    Raises:
        FlowTransitionError: the table has no such move.
    """
    after = TRANSITIONS.get((type_, state, event))
    if after is None:
        raise FlowTransitionError(f"a {type_.value} flow cannot go from {state.value} on "
                                  f"{event.value}")
    return after


def backoff_ms(attempts: int) -> int:
    """Wait before retry number ``attempts``: doubling from 250 ms, at most 30 s."""
    return int(min(_MAX_RETRY_MS, _FIRST_RETRY_MS * 2 ** min(attempts, 16)))


class _Absent(Enum):
    """A field a stored record does not have (not the same as a field that is null)."""

    ABSENT = "absent"


ABSENT = _Absent.ABSENT

# The fields a flow has whatever its type, in the order they are declared below.
_FLOW_FIELDS = ("type", "state", "chain", "height", "peer", "deadline", "message", "reason",
                "receipt")
# The fields only some flows have (by type, or once they got that far).
_FLOW_OPTIONAL = ("payee", "offer", "maker_chain", "take", "answers", "settled_height",
                  "released_height", "proof")


@dataclass(frozen=True, slots=True)
class Flow:
    """One cross-bank flow as the ``flows`` database keeps it (see the module docstring).

    ``chain``/``height``: our entry that opened the hold (a transfer, take) or settled the
    offer (an exchange); ``message``: the outbox message asking the peer; ``receipt``: the
    peer's entry that completed it; ``rest``: fields of a record this version does not know,
    kept as they are.
    """

    type: FlowType
    state: FlowState
    chain: str
    height: int
    peer: str
    deadline: int
    message: str | None
    reason: str | None
    receipt: dict[str, Any] | None
    payee: str | _Absent = ABSENT  # transfer (absent in flows recorded before it was)
    offer: str | _Absent = ABSENT  # take, exchange
    maker_chain: str | _Absent = ABSENT  # take: the offer's chain (absent in older flows)
    take: dict[str, Any] | _Absent = ABSENT  # exchange: the peer's take
    answers: tuple[dict[str, Any], ...] | _Absent = ABSENT  # exchange: the peer's answers;
    #                                                           take: its first pending
    settled_height: int | _Absent = ABSENT
    released_height: int | _Absent = ABSENT
    proof: str | _Absent | None = ABSENT  # exchange: the non-settlement proof, if defaulted
    rest: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def start(cls, type_: FlowType, *, chain: str, height: int, peer: str, deadline: int,
              message: str | None, **extra: Any) -> Flow:
        """A new flow, in the state its type starts in (:data:`INITIAL`)."""
        return cls(type_, INITIAL[type_], chain, height, peer, deadline, message, None, None,
                   **extra)

    def moved(self, event: FlowEvent, **changes: Any) -> Flow:
        """This flow after ``event`` (the table says to what state), with ``changes``.

        Raises:
            FlowTransitionError: the table has no such move.
        """
        if "state" in changes:
            raise TypeError("a flow's state changes only by its event")
        after = next_state(self.type, self.state, event)
        return dataclasses.replace(self, state=after, **changes)

    @property
    def waiting_on_peer(self) -> bool:
        return self.state in WAITING_ON_PEER or (
            self.type is FlowType.LOCK and self.state is FlowState.AWAITING_PEER)

    def timers(self) -> dict[str, int]:
        """``flows``: an exchange the peer has not settled, once past its deadline; a lock
        not claimed, once past its expiry (and the clocks' margin: we then ask the payee's
        bank, whose clock decides)."""
        if self.type is FlowType.EXCHANGE and self.state is FlowState.AWAITING_PEER:
            return {"flows": self.deadline + 1}
        if self.type is FlowType.LOCK and self.state is FlowState.PENDING:
            return {"flows": self.deadline + CLOCK_MARGIN_MS}
        return {}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Flow:
        known = {**{k: d[k] for k in _FLOW_FIELDS}, **{k: d[k] for k in _FLOW_OPTIONAL
                                                        if k in d}}
        known["type"] = FlowType(known["type"])
        known["state"] = FlowState(known["state"])
        if "answers" in known:
            known["answers"] = tuple(known["answers"])
        rest = {k: v for k, v in d.items() if k not in known}
        return cls(**known, rest=rest)

    def to_dict(self) -> dict[str, Any]:
        """The stored form: the same keys and values the record was read with."""
        d: dict[str, Any] = {k: getattr(self, k) for k in _FLOW_FIELDS}
        d["type"], d["state"] = self.type.value, self.state.value
        for k in _FLOW_OPTIONAL:
            value = getattr(self, k)
            if value is not ABSENT:
                d[k] = list(value) if k == "answers" else value
        return {**d, **self.rest}


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A signed message to ``peer`` waiting in the ``outbox`` database.

    ``flow``: the flow it asks the peer about (None: news of an offer, given up at
    ``give_up``); ``next_try``: when it is next sent; ``waiting``: the peer's last word was
    ``pending`` (an answer that decides nothing yet), not a failure, so the tries it is asked
    again are backed off but no sign of a stuck peer.
    """

    peer: str
    message: dict[str, Any]
    attempts: int
    next_try: int
    give_up: int | None
    flow: str | None
    last_error: str | None
    waiting: bool = False

    @property
    def type(self) -> str:
        """The type of the message (transfer, take, settle, offer, offer_closed)."""
        return str(self.message["message"]["type"])

    def failed(self, now: int, error: str, *, waiting: bool = False) -> OutboxItem:
        """After a failed delivery, or a ``pending`` (``waiting``): the next try backed off."""
        attempts = self.attempts + 1
        return dataclasses.replace(self, attempts=attempts, next_try=now + backoff_ms(attempts),
                                   last_error=error[:500], waiting=waiting)

    def timers(self) -> dict[str, int]:
        """``sends``: when it is next to be sent; ``outbox``: news of an offer (no flow), once
        stale beyond the clocks' margin."""
        timers = {"sends": self.next_try}
        if self.flow is None and self.give_up is not None:
            timers["outbox"] = self.give_up + CLOCK_MARGIN_MS + 1
        return timers

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> OutboxItem:
        return cls(d["peer"], d["message"], d["attempts"], d["next_try"], d["give_up"],
                   d["flow"], d["last_error"], bool(d.get("waiting", False)))

    def to_dict(self) -> dict[str, Any]:
        out = {"peer": self.peer, "message": self.message, "attempts": self.attempts,
               "next_try": self.next_try, "give_up": self.give_up, "flow": self.flow,
               "last_error": self.last_error}
        if self.waiting:  # (written only when set: a record of before reads back the same)
            out["waiting"] = True
        return out


@dataclass(frozen=True, slots=True)
class OfferRecord:
    """An offer known here (``validator``: the bank that made it), as the ``offers`` database
    keeps it: the signed offer entry is its proof (None: news of its close that came first).
    A fill lowers ``remaining`` (None: all the offer sells is left; stored only once a fill
    is known, so records of offers never filled keep their bytes), never raises it, whatever
    order the news comes in; closing a closed offer changes nothing.

    ``bids``: takes of our offer with a selection window that came while it was open, each
    ``{"at", "message"}`` (a peer's signed take message) or ``{"at", "take"}`` (our customer's
    take entry), waiting to be ranked at ``decide_at`` (docs/adr/0009-best-taker.md); both
    stored only while bids wait, so other records keep their bytes. ``winners`` and ``outbid``:
    of a peer's offer with a window, the fills and settles its news brought, and our takes it
    refused as outbid (each ``{"request", "pending", "refusal"}``): what an unfair selection
    is proven from; stored only when there are some."""

    validator: str
    offer: dict[str, Any] | None
    state: OfferState
    expires: int
    sell: str
    buy: str
    remaining: int | None = None
    bids: tuple[dict[str, Any], ...] = ()
    decide_at: int | None = None
    winners: tuple[dict[str, Any], ...] = ()
    outbid: tuple[dict[str, Any], ...] = ()

    @classmethod
    def opened(cls, validator: str, offer: dict[str, Any], *, expires: int, sell: str,
               buy: str) -> OfferRecord:
        return cls(validator, offer, OfferState.OPEN, expires, sell, buy)

    @classmethod
    def closed_unseen(cls, validator: str, expires: int) -> OfferRecord:
        """The close of an offer whose news has not come yet: kept so that it is not listed
        when it comes."""
        return cls(validator, None, OfferState.CLOSED, expires, "", "")

    def closed(self) -> OfferRecord:
        return dataclasses.replace(self, state=OfferState.CLOSED, bids=(), decide_at=None)

    def with_bid(self, bid: dict[str, Any], decide_at: int) -> OfferRecord:
        """One more take waiting for the window that closes at ``decide_at``."""
        return dataclasses.replace(self, bids=(*self.bids, bid), decide_at=decide_at)

    def decided(self) -> OfferRecord:
        """The waiting takes were decided (each answered or settled by the caller)."""
        return dataclasses.replace(self, bids=(), decide_at=None)

    def filled(self, remaining: int) -> OfferRecord:
        """After a fill that left ``remaining`` of it: the least remainder heard of."""
        if self.remaining is not None and self.remaining <= remaining:
            return self
        return dataclasses.replace(self, remaining=remaining)

    @property
    def is_open(self) -> bool:
        return self.state is OfferState.OPEN

    def timers(self) -> dict[str, int]:
        """``offers``: once expired (ours to release if still open; a peer's to let go), or,
        while takes wait for its window, when it closes (the expiry's time was set before)."""
        if self.bids and self.decide_at is not None:
            return {"offers": self.decide_at}
        return {"offers": self.expires}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> OfferRecord:
        return cls(d["validator"], d["offer"], OfferState(d["state"]), d["expires"], d["sell"],
                   d["buy"], None if "remaining" not in d else int(d["remaining"]),
                   tuple(d.get("bids", ())), d.get("decide_at"), tuple(d.get("winners", ())),
                   tuple(d.get("outbid", ())))

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"validator": self.validator, "offer": self.offer,
                             "state": self.state.value, "expires": self.expires,
                             "sell": self.sell, "buy": self.buy}
        if self.remaining is not None:
            d["remaining"] = str(self.remaining)
        if self.bids:
            d["bids"] = list(self.bids)
            d["decide_at"] = self.decide_at
        for name in ("winners", "outbid"):
            if getattr(self, name):
                d[name] = list(getattr(self, name))
        return d


class LockState(StrEnum):
    """Where a peer's lock stands at the payee's bank: its first decision is final."""

    OPEN = "open"
    CLAIMED = "claimed"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class LockRecord:
    """A lock for one of our customers, made at a peer (``validator``), as the payee's bank
    keeps it in the ``locks`` database under the lock entry's id.

    ``lock``: the peer's signed lock entry (None: asked about before it came, and decided
    expired, so it is refused if it comes); ``claim``: our claim entry once claimed.
    """

    validator: str
    lock: dict[str, Any] | None
    state: LockState
    expires: int
    claim: dict[str, Any] | None = None

    @classmethod
    def opened(cls, validator: str, lock: SignedEntry) -> LockRecord:
        return cls(validator, lock.doc, LockState.OPEN, lock_body(lock).expires)

    def claimed(self, claim: SignedEntry) -> LockRecord:
        assert self.state is LockState.OPEN, f"a lock {self.state.value} cannot be claimed"
        return dataclasses.replace(self, state=LockState.CLAIMED, claim=claim.doc)

    def expired(self) -> LockRecord:
        assert self.state is not LockState.CLAIMED, "a claimed lock cannot expire"
        return dataclasses.replace(self, state=LockState.EXPIRED)

    def timers(self) -> dict[str, int]:
        """``locks``: an open lock at its expiry (ours to release, a peer's to decide)."""
        return {"locks": self.expires} if self.state is LockState.OPEN else {}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LockRecord:
        return cls(d["validator"], d["lock"], LockState(d["state"]), d["expires"], d["claim"])

    def to_dict(self) -> dict[str, Any]:
        return {"validator": self.validator, "lock": self.lock, "state": self.state.value,
                "expires": self.expires, "claim": self.claim}


_RECORDS: Mapping[str, type[Flow] | type[OutboxItem] | type[OfferRecord] | type[LockRecord]] = {
    "flows": Flow, "outbox": OutboxItem, "offers": OfferRecord, "locks": LockRecord}


def timers_of(db: str, record: Mapping[str, Any]) -> dict[str, int]:
    """When a stored record of ``db`` will need the clock, by timer (see the store's TIMERS);
    none for a record of another database."""
    kind = _RECORDS.get(db)
    return {} if kind is None else kind.from_dict(record).timers()
