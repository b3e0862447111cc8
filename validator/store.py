"""The validator's store: one LMDB environment with named databases. The only module that
touches LMDB.

Rules it keeps (DESIGN.md, Storage):
- **Durable before signed**: :meth:`Store.write` returns only after the transaction committed
  with sync on, and callers hand out signatures only after it returns.
- **Atomic**: everything one call to :meth:`Store.write` writes commits together or not at all;
  many intents may share one call (group commit builds on this).
- **Never two entries at a height**: entries are written with ``overwrite=False``; a second write
  at a height is refused by the store itself, whatever the caller believes.
- **Multi-process safe**: the environment is opened lazily in the process that uses it (after a
  fork, never at import), and a map grown by another process is adopted.
- **Grows rather than fails**: a full map is doubled and the transaction re-run, up to
  ``max_map_size``; past that (or when the disk is full) :class:`StoreFullError`.

Databases (keys fixed-width where they can be; ``C`` = 32-byte chain id):
  entries   C | height(8, big-endian)  -> signed entry, canonical bytes
  states    C                          -> chain state (JSON), its holds apart:
  holds     C | hold id(32)            -> an open hold of the chain (canonical JSON); a state
                                          carries only the holds it opened or closed since it
                                          was read, so an entry's cost does not grow with them
  names     name (utf-8)               -> C
  owners    owner key (32 bytes)       -> C
  kyc       C                          -> KYC record, canonical bytes (private, never in a chain)
  regulators  key (32 bytes)           -> b"" (keys allowed to read every chain)
  meta      ascii key                  -> value (the bank chain id, ...)
  peers     peer bank name (utf-8)     -> pinned peer record (JSON: name, key, url, chain)
  former_peers  key (32 bytes)         -> the record of a peer no longer pinned (JSON): the
                                          entries that crossed with it still name its key
  outbox    message id (32)            -> a message waiting for its peer (JSON, see ledger)
  inbox     message id (32)            -> the answer given to a peer's message (exact bytes)
  offers    offer entry id (32)        -> an offer known here, ours or a peer's (JSON)
  flows     entry id (32)              -> a cross-bank flow in progress or done (JSON)
  proofs    proof id (32)              -> a signed proof of a peer's misbehaviour (canonical)
  timers    timer(1) | ms(8) | id(32)  -> b"" (when a flow, offer or outbox record may need the
                                          clock's attention, or a message is due to be sent:
                                          found without reading every record)
  positions UAI | 0 | peer name        -> what crossed with that peer in that asset (canonical
                                          JSON, tchain.books.Position)
  totals    UAI                        -> the sum of the asset's balances over all our chains
                                          (decimal); with the positions, the books' invariant
  subjects  entry id (32)              -> the id of the first peer message that carried that
                                          hold, take or settlement: one answer per debit,
                                          whatever message carries it again
  open_offers UAI | 0 | offer id (32)  -> b"" (each open offer under the two assets it
                                          trades and under "*": a listing costs what it
                                          lists, not every offer ever seen)

The books (positions and totals) are kept by the store itself: every write that appends
entries or moves a position is checked, before it commits, to make and lose no value
(tchain.books.Tally), the way a second entry at a height is refused here whatever the caller
believes.
"""

from __future__ import annotations

import errno
import json
import os
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import lmdb

from tchain.books import Move, Position, Tally
from tchain.encoding import canonical, encode_built
from tchain.errors import BooksError, StoreError, StoreFullError
from tchain.flow_states import OfferState
from tchain.model import SignedEntry
from tchain.state import ChainState, Hold, Holds, LoadedHolds

__all__ = ["Failed", "RateBuckets", "Reader", "Store", "Writer"]

T = TypeVar("T")
_DBS = ("entries", "states", "holds", "names", "owners", "kyc", "regulators", "meta", "peers",
        "outbox", "inbox", "offers", "flows", "proofs", "timers", "positions", "totals",
        "subjects", "open_offers", "former_peers", "locks", "plans", "routes")
# The databases of JSON records keyed by a 32-byte id, read and written through one API.
RECORD_DBS = frozenset({"outbox", "offers", "flows", "proofs", "locks", "plans", "routes"})
_HEIGHT = struct.Struct(">Q")
_TIMER = struct.Struct(">BQ")  # the timer (its index in TIMERS), the time it is due
# see validator.flows.timers_of; "recoveries": a chain's pending recovery of its key is due;
# "locks": a hash-time lock kept here reaches its expiry (tchain.htlc.LockRecord)
# "plans": a plan's next time to look at (validator.plans: a deadline, a due, an await)
TIMERS = ("flows", "offers", "outbox", "sends", "answers", "recoveries", "locks", "plans")
DEFAULT_MAP_SIZE = 1 << 20  # a new environment starts small and doubles as it fills
_ADOPT_ATTEMPTS = 100  # map sizes adopted in a row before a begin gives up
BOOKS = "books"  # meta: the positions and totals cover every entry (a store made by this
#                  version, or one whose books were rebuilt from its entries)
MAX_READERS = 256  # LMDB reader slots, shared by every process that opens the store


def _chain_prefix(chain_id: str) -> bytes:
    return bytes.fromhex(chain_id)


def _record_db(db: str) -> str:
    if db not in RECORD_DBS:
        raise ValueError(f"{db!r} is not one of the record databases {sorted(RECORD_DBS)}")
    return db


_HOLDS_APART = b"holds_apart"  # meta: every chain's holds are in the holds database
_OFFERS_LISTED = b"offers_listed"  # meta: every open offer is in the open_offers index
ALL_OFFERS = "*"  # the open_offers key every open offer is listed under


def _offer_keys(offer_id: bytes, record: Mapping[str, Any]) -> list[bytes]:
    return [f"{name}\0".encode() + offer_id
            for name in (record["sell"], record["buy"], ALL_OFFERS)]


def _list_open_offers(env: lmdb.Environment, dbs: dict[str, Any]) -> None:
    """Stores written before the open_offers index: list their open offers in it, once."""
    with env.begin() as txn:
        if txn.get(_OFFERS_LISTED, db=dbs["meta"]) is not None:
            return
    with env.begin(write=True) as txn:
        if txn.get(_OFFERS_LISTED, db=dbs["meta"]) is not None:
            return
        with txn.cursor(db=dbs["offers"]) as cur:
            listed = [(bytes(k), json.loads(bytes(v))) for k, v in cur]
        for offer_id, record in listed:
            if record["state"] == OfferState.OPEN:
                for key in _offer_keys(offer_id, record):
                    txn.put(key, b"", db=dbs["open_offers"])
        txn.put(_OFFERS_LISTED, b"", db=dbs["meta"])


def _move_holds_apart(env: lmdb.Environment, dbs: dict[str, Any]) -> None:
    """Stores written before the holds database kept each chain's open holds inside its state:
    move them out, once, in one transaction (a process that finds it done reads one key)."""
    with env.begin() as txn:
        if txn.get(_HOLDS_APART, db=dbs["meta"]) is not None:
            return
    with env.begin(write=True) as txn:
        if txn.get(_HOLDS_APART, db=dbs["meta"]) is not None:
            return  # another process moved them meanwhile
        inside = []
        with txn.cursor(db=dbs["states"]) as cur:
            for key, value in cur:
                state = json.loads(bytes(value))
                if "holds" in state:
                    inside.append((bytes(key), state, state.pop("holds")))
        for key, state, holds in inside:
            for hold_id, hold in holds.items():
                txn.put(key + bytes.fromhex(hold_id), encode_built(hold), db=dbs["holds"])
            txn.put(key, encode_built(state), db=dbs["states"])
        txn.put(_HOLDS_APART, b"", db=dbs["meta"])


class Reader:
    """Read access inside one LMDB transaction: a consistent snapshot."""

    def __init__(self, txn: lmdb.Transaction, dbs: dict[str, Any]) -> None:
        self._txn: lmdb.Transaction = txn
        self._dbs = dbs

    def _end(self) -> None:
        """Let go of the transaction (see Store.read): an ended read-only transaction that is
        still referenced keeps its LMDB reader slot, and a Reader is referenced from every
        traceback that saw one."""
        self._txn = None  # type: ignore[assignment]

    def _get(self, db: str, key: bytes) -> bytes | None:
        value = self._txn.get(key, db=self._dbs[db])
        return None if value is None else bytes(value)

    def state(self, chain_id: str, holds: Iterable[str] = ()) -> ChainState | None:
        """A chain's state, with those of its open holds whose ids are in ``holds`` (the one a
        decision closes, tchain.state.holds_read): its cost does not grow with the holds
        open. The state refuses to look up any other (tchain.state.LoadedHolds)."""
        raw = self.state_bytes(chain_id)
        if raw is None:
            return None
        looked_up = frozenset(holds)
        found = {}
        for hold_id in looked_up:
            hold = self._hold(chain_id, hold_id)
            if hold is not None:
                found[hold_id] = hold
        return ChainState.from_bytes(raw).with_holds(Holds(LoadedHolds(found, looked_up)))

    def state_with_holds(self, chain_id: str) -> ChainState | None:
        """A chain's state with every hold open on it: for the audit, the operator and the
        tests, never for a decision (its cost grows with the holds)."""
        raw = self.state_bytes(chain_id)
        if raw is None:
            return None
        return ChainState.from_bytes(raw).with_holds(Holds(self.holds(chain_id)))

    def holds(self, chain_id: str) -> dict[str, Hold]:
        """Every hold open on a chain, by the id of the entry that opened it."""
        prefix = _chain_prefix(chain_id)
        out: dict[str, Hold] = {}
        with self._txn.cursor(db=self._dbs["holds"]) as cur:
            if cur.set_range(prefix):
                for key, value in cur:
                    if not bytes(key).startswith(prefix):
                        break
                    out[bytes(key[len(prefix):]).hex()] = Hold.from_bytes(bytes(value))
        return out

    def _hold(self, chain_id: str, hold_id: str) -> Hold | None:
        try:
            key = _chain_prefix(chain_id) + bytes.fromhex(hold_id)
        except ValueError:
            return None
        raw = self._get("holds", key)
        return None if raw is None else Hold.from_bytes(raw)

    def state_bytes(self, chain_id: str) -> bytes | None:
        """A chain's state as stored: equal bytes mean an unchanged chain."""
        return self._get("states", _chain_prefix(chain_id))

    def entry(self, chain_id: str, height: int) -> bytes | None:
        return self._get("entries", _chain_prefix(chain_id) + _HEIGHT.pack(height))

    def entries(self, chain_id: str, start: int, limit: int) -> list[bytes]:
        """Up to ``limit`` signed entries of a chain from height ``start``, in order."""
        prefix = _chain_prefix(chain_id)
        out: list[bytes] = []
        with self._txn.cursor(db=self._dbs["entries"]) as cur:
            if not cur.set_range(prefix + _HEIGHT.pack(start)):
                return out
            for key, value in cur:
                if len(out) >= limit or not bytes(key).startswith(prefix):
                    break
                out.append(bytes(value))
        return out

    def chain_by_name(self, name: str) -> str | None:
        raw = self._get("names", name.encode("utf-8"))
        return None if raw is None else raw.hex()

    def chain_by_owner(self, owner: str) -> str | None:
        raw = self._get("owners", bytes.fromhex(owner))
        return None if raw is None else raw.hex()

    def kyc(self, chain_id: str) -> bytes | None:
        return self._get("kyc", _chain_prefix(chain_id))

    def chain_ids(self, after: str | None, limit: int) -> list[str]:
        """Chain ids in byte order, starting after ``after``: a page of ``GET /v1/chains``."""
        out: list[str] = []
        with self._txn.cursor(db=self._dbs["states"]) as cur:
            found = cur.set_range(_chain_prefix(after) if after else b"")
            if not found:
                return out
            for key in cur.iternext(keys=True, values=False):
                if after is not None and key == _chain_prefix(after):
                    continue
                if len(out) >= limit:
                    break
                out.append(bytes(key).hex())
        return out

    def is_regulator(self, key: str) -> bool:
        return self._get("regulators", bytes.fromhex(key)) is not None

    def regulators(self) -> list[str]:
        with self._txn.cursor(db=self._dbs["regulators"]) as cur:
            return [bytes(k).hex() for k in cur.iternext(keys=True, values=False)]

    def books_kept(self) -> bool:
        """Whether the positions and totals cover every entry (see BOOKS)."""
        return self.meta(BOOKS) is not None

    def count(self, db: str) -> int:
        """The number of rows of a database: for the health check and the tests that count
        what hostile traffic left behind."""
        return int(self._txn.stat(self._dbs[db])["entries"])

    def meta(self, key: str) -> str | None:
        raw = self._get("meta", key.encode("ascii"))
        return None if raw is None else raw.decode("utf-8")

    def peer(self, name: str) -> dict[str, Any] | None:
        """The pinned record of a trusted peer bank, or None."""
        raw = self._get("peers", name.encode("utf-8"))
        return None if raw is None else dict(json.loads(raw))

    def peers(self) -> list[dict[str, Any]]:
        """Every pinned peer, by name."""
        with self._txn.cursor(db=self._dbs["peers"]) as cur:
            return [dict(json.loads(bytes(v))) for v in cur.iternext(keys=False, values=True)]

    def open_holds(self) -> list[tuple[str, str, Hold]]:
        """Every open hold of every chain, as (chain id, hold id, hold): what is held now,
        not every flow ever kept (for the metrics)."""
        with self._txn.cursor(db=self._dbs["holds"]) as cur:
            return [(bytes(k[:32]).hex(), bytes(k[32:]).hex(), Hold.from_bytes(bytes(v)))
                    for k, v in cur]

    def former_peers(self) -> list[dict[str, Any]]:
        """The records of peers pinned once and removed since (by the operator)."""
        with self._txn.cursor(db=self._dbs["former_peers"]) as cur:
            return [dict(json.loads(bytes(v))) for v in cur.iternext(keys=False, values=True)]

    def record(self, db: str, record_id: str) -> dict[str, Any] | None:
        """One JSON record of ``db`` (outbox, offers, flows or proofs) by its hex id."""
        raw = self._get(_record_db(db), bytes.fromhex(record_id))
        return None if raw is None else dict(json.loads(raw))

    def records(self, db: str) -> list[tuple[str, dict[str, Any]]]:
        """Every record of ``db`` with its hex id, in id order."""
        with self._txn.cursor(db=self._dbs[_record_db(db)]) as cur:
            return [(bytes(k).hex(), dict(json.loads(bytes(v)))) for k, v in cur]

    def records_page(self, db: str, after: str | None, limit: int
                     ) -> list[tuple[str, dict[str, Any]]]:
        """Up to ``limit`` records of ``db`` with their hex ids, in id order, from after
        ``after``: a page, so a listing costs what it shows, not every record kept."""
        out: list[tuple[str, dict[str, Any]]] = []
        start = bytes.fromhex(after) if after else b""
        with self._txn.cursor(db=self._dbs[_record_db(db)]) as cur:
            if not cur.set_range(start):
                return out
            for key, value in cur:
                if len(out) >= limit:
                    break
                if bytes(key) != start:
                    out.append((bytes(key).hex(), dict(json.loads(bytes(value)))))
        return out

    def open_offers(self, asset: str | None, after: str | None, limit: int) -> list[str]:
        """Up to ``limit`` ids of open offers that trade ``asset`` (any, when None), in id
        order, from after ``after``."""
        prefix = f"{ALL_OFFERS if asset is None else asset}\0".encode()
        start = prefix + (bytes.fromhex(after) if after else b"")
        out: list[str] = []
        with self._txn.cursor(db=self._dbs["open_offers"]) as cur:
            if cur.set_range(start):
                for key in cur.iternext(keys=True, values=False):
                    if len(out) >= limit or not bytes(key).startswith(prefix):
                        break
                    offer_id = bytes(key[len(prefix):]).hex()
                    if offer_id != after:
                        out.append(offer_id)
        return out

    def due(self, timer: str, now: int) -> list[tuple[str, int]]:
        """The records put with a time on ``timer`` (one of TIMERS) that has come by ``now``,
        earliest first: (hex id, time). Costs what is due, not what is kept."""
        index = TIMERS.index(timer)
        found = []
        with self._txn.cursor(db=self._dbs["timers"]) as cur:
            if cur.set_range(_TIMER.pack(index, 0)):
                for key in cur.iternext(keys=True, values=False):
                    which, at = _TIMER.unpack_from(key)
                    if which != index or at > now:
                        break
                    found.append((bytes(key[_TIMER.size:]).hex(), at))
        return found

    def answer(self, message_id: str) -> bytes | None:
        """The answer already given to a peer's message, if it was seen before."""
        return self._get("inbox", bytes.fromhex(message_id))

    def subject(self, about: str) -> tuple[str, str] | None:
        """The first peer message that asked ``about`` (what a request asks once: a customer's
        intent or a settlement, as one sender asks it in one type of message), if one did, and
        the entry it carried it in (its id): (message id, entry id)."""
        raw = self._get("subjects", bytes.fromhex(about))
        return None if raw is None else (raw[:32].hex(), raw[32:].hex())

    def position(self, peer: str, asset: str) -> Position:
        """What crossed between us and ``peer`` in ``asset`` (zeros if nothing did)."""
        raw = self._get("positions", _position_key(asset, peer))
        return Position() if raw is None else Position.from_bytes(raw)

    def positions(self) -> list[tuple[str, str, Position]]:
        """Every position kept: (peer, asset, position)."""
        with self._txn.cursor(db=self._dbs["positions"]) as cur:
            out = []
            for key, value in cur:
                asset, _, peer = bytes(key).decode("utf-8").partition("\0")
                out.append((peer, asset, Position.from_bytes(bytes(value))))
            return out

    def total(self, asset: str) -> int:
        """The sum of ``asset``'s balances over all our chains, as the books keep it."""
        raw = self._get("totals", asset.encode("utf-8"))
        return 0 if raw is None else int(raw)

    def totals(self) -> dict[str, int]:
        with self._txn.cursor(db=self._dbs["totals"]) as cur:
            return {bytes(k).decode("utf-8"): int(bytes(v)) for k, v in cur}

    def held_by_peers(self, asset: str) -> int:
        """What all our peers hold of ``asset`` by our positions."""
        prefix = asset.encode("utf-8") + b"\0"
        held = 0
        with self._txn.cursor(db=self._dbs["positions"]) as cur:
            if cur.set_range(prefix):
                for key, value in cur:
                    if not bytes(key).startswith(prefix):
                        break
                    held += Position.from_bytes(bytes(value)).held
        return held


def _position_key(asset: str, peer: str) -> bytes:
    return f"{asset}\0{peer}".encode()


class Writer(Reader):
    """Read and write access inside one write transaction (one work of a group commit)."""

    def __init__(self, txn: lmdb.Transaction, dbs: dict[str, Any], env: lmdb.Environment
                 ) -> None:
        super().__init__(txn, dbs)
        self._env = env
        self._tally = Tally()

    def all_or_nothing(self, work: Callable[[Writer], T]) -> T:
        """Run ``work`` in a transaction nested in this one: if it raises, none of its writes
        stay, and this write goes on. So a peer message refused after its handler wrote keeps
        its refusal and nothing else (the round 12 tester saw a plan's hold released with
        nothing in its log)."""
        child = Writer(self._env.begin(write=True, parent=self._txn), self._dbs, self._env)
        try:
            result = work(child)
        except BaseException:
            child._txn.abort()
            raise
        child._txn.commit()
        self._tally.absorb(child._tally)
        return result

    def append(self, entry: SignedEntry, state: ChainState | None, raw: bytes | None = None
               ) -> None:
        """Append a signed entry and its chain's state after it (``raw``: the state's bytes,
        if made already; None: a later entry of this write puts the chain's state); its
        balance changes count in the books."""
        self.put_entry(entry.chain_id, entry.height, entry.to_bytes())
        if state is not None:
            self.put_state(state, raw)
        self._tally.entry(entry.effects)

    def move(self, peer: str, move: Move) -> None:
        """Change the position with ``peer`` (tchain.books)."""
        key = _position_key(move.asset, peer)
        raw = self._get("positions", key)
        after = (Position() if raw is None else Position.from_bytes(raw)).moved(move)
        self._txn.put(key, after.to_bytes(), db=self._dbs["positions"])
        self._tally.move(move)

    def close_books(self) -> None:
        """Refuse (BooksError) this work if it made or lost value; else keep the totals of
        what it changed, and check them against the positions (the invariant itself, for
        those assets). Works that only move value between our chains cost nothing here."""
        tally = self._tally
        tally.check()
        for asset in tally.touched():
            total = self.total(asset) + tally.chains[asset]
            self._txn.put(asset.encode("utf-8"), str(total).encode("ascii"),
                          db=self._dbs["totals"])
            held = self.held_by_peers(asset)
            if total + held:
                raise BooksError(f"{asset}: {total} over our chains and {held} held by peers "
                                 "do not sum to zero")

    def put_books(self, totals: Mapping[str, int],
                  positions: Iterable[tuple[str, str, Position]]) -> None:
        """Replace the books with ones rebuilt from the entries (validator.audit), and mark
        them kept."""
        for db in ("totals", "positions"):
            self._txn.drop(self._dbs[db], delete=False)
        for asset, total in totals.items():
            self._txn.put(asset.encode("utf-8"), str(total).encode("ascii"),
                          db=self._dbs["totals"])
        for peer, asset, position in positions:
            self._txn.put(_position_key(asset, peer), position.to_bytes(),
                          db=self._dbs["positions"])
        self.put_meta(BOOKS, "1")

    def put_state(self, state: ChainState, raw: bytes | None = None) -> None:
        """Store a chain's state (``raw``: its :meth:`ChainState.to_bytes`, if made already)
        and the holds it opened and closed since it was read."""
        prefix = _chain_prefix(state.chain)
        self._txn.put(prefix, state.to_bytes() if raw is None else raw, db=self._dbs["states"])
        opened, closed = state.holds.changes()
        holds = self._dbs["holds"]
        for hold_id in closed:
            self._txn.delete(prefix + bytes.fromhex(hold_id), db=holds)
        for hold_id, hold in opened.items():
            self._txn.put(prefix + bytes.fromhex(hold_id), hold.to_bytes(), db=holds)

    def put_entry(self, chain_id: str, height: int, signed: bytes) -> None:
        """Put an entry's bytes; refuse (StoreError) if the height already holds one. The
        books do not see it: an entry that changes a balance goes through :meth:`append`."""
        key = _chain_prefix(chain_id) + _HEIGHT.pack(height)
        if not self._txn.put(key, signed, db=self._dbs["entries"], overwrite=False):
            raise StoreError(f"chain {chain_id} already holds an entry at height {height}; "
                             "refusing to sign a second one")

    def put_name(self, name: str, chain_id: str) -> bool:
        """Bind a name to a chain; False if the name is taken."""
        return bool(self._txn.put(name.encode("utf-8"), _chain_prefix(chain_id),
                                  db=self._dbs["names"], overwrite=False))

    def put_owner(self, owner: str, chain_id: str) -> bool:
        """Bind an owner key to a chain; False if the key already owns one."""
        return bool(self._txn.put(bytes.fromhex(owner), _chain_prefix(chain_id),
                                  db=self._dbs["owners"], overwrite=False))

    def delete_owner(self, owner: str) -> None:
        self._txn.delete(bytes.fromhex(owner), db=self._dbs["owners"])

    def put_kyc(self, chain_id: str, record: bytes) -> None:
        self._txn.put(_chain_prefix(chain_id), record, db=self._dbs["kyc"])

    def add_regulator(self, key: str) -> bool:
        """Register a regulator key; False if it was already registered."""
        return bool(self._txn.put(bytes.fromhex(key), b"", db=self._dbs["regulators"],
                                  overwrite=False))

    def put_peer(self, record: dict[str, Any]) -> None:
        """Pin a peer bank (its name, key, url and chain)."""
        self._txn.put(record["name"].encode("utf-8"), canonical(record), db=self._dbs["peers"])

    def delete_peer(self, name: str) -> dict[str, Any] | None:
        """Unpin a peer bank; its record is kept among the former peers, by key. Returns the
        record, or None if it was not pinned."""
        record = self.peer(name)
        if record is not None:
            self._txn.delete(name.encode("utf-8"), db=self._dbs["peers"])
            self._txn.put(bytes.fromhex(record["key"]), canonical(record),
                          db=self._dbs["former_peers"])
        return record

    def delete_regulator(self, key: str) -> bool:
        """Let a regulator key go; False if it was not registered."""
        return bool(self._txn.delete(bytes.fromhex(key), db=self._dbs["regulators"]))

    def put_record(self, db: str, record_id: str, record: dict[str, Any], *,
                   timers: Iterable[tuple[str, int]] = ()) -> None:
        """Keep a record; :meth:`Reader.due` finds it on each (timer, time) from that time on
        (a time set before stays until cleared: whoever reads it checks the record)."""
        key = bytes.fromhex(record_id)
        # a record is built here from parts already checked (see encode_built)
        self._txn.put(key, encode_built(record), db=self._dbs[_record_db(db)])
        if db == "offers":
            for listed in _offer_keys(key, record):
                if record["state"] == OfferState.OPEN:
                    self._txn.put(listed, b"", db=self._dbs["open_offers"])
                else:
                    self._txn.delete(listed, db=self._dbs["open_offers"])
        for timer, at in timers:
            self._txn.put(_TIMER.pack(TIMERS.index(timer), at) + key, b"",
                          db=self._dbs["timers"])

    def set_due(self, timer: str, record_id: str, at: int) -> None:
        """Have :meth:`Reader.due` list ``record_id`` on ``timer`` from ``at`` on."""
        self._txn.put(_TIMER.pack(TIMERS.index(timer), at) + bytes.fromhex(record_id), b"",
                      db=self._dbs["timers"])

    def clear_due(self, timer: str, record_id: str, at: int) -> None:
        """Forget one time :meth:`Reader.due` gave (it has been seen to)."""
        self._txn.delete(_TIMER.pack(TIMERS.index(timer), at) + bytes.fromhex(record_id),
                         db=self._dbs["timers"])

    def delete_record(self, db: str, record_id: str) -> None:
        key = bytes.fromhex(record_id)
        if db == "offers" and (record := self.record(db, record_id)) is not None:
            for listed in _offer_keys(key, record):
                self._txn.delete(listed, db=self._dbs["open_offers"])
        self._txn.delete(key, db=self._dbs[_record_db(db)])

    def put_answer(self, message_id: str, answer: bytes, *,
                   subject: tuple[str, str] | None = None, forget_at: int | None = None
                   ) -> None:
        """Keep the answer to a peer's message: a second delivery gets these same bytes.
        ``subject``: (what it asks once, the entry that carries it); if it is the first to ask
        it, :meth:`Reader.subject` names it and that entry. ``forget_at``: from then on
        :meth:`Reader.due` lists it on the ``answers`` timer, for :meth:`forget_answer`."""
        key = bytes.fromhex(message_id)
        if not self._txn.put(key, answer, db=self._dbs["inbox"], overwrite=False):
            raise StoreError(f"message {message_id} was already answered")
        about = b"" if subject is None else bytes.fromhex(subject[0])
        if subject is not None:
            self._txn.put(about, key + bytes.fromhex(subject[1]), db=self._dbs["subjects"],
                          overwrite=False)
        if forget_at is not None:
            self._txn.put(_TIMER.pack(TIMERS.index("answers"), forget_at) + key, about,
                          db=self._dbs["timers"])

    def forget_answer(self, message_id: str, at: int) -> None:
        """Let go of an answer put with ``forget_at`` = ``at``, and of its subject if it was
        the first to carry it."""
        key = bytes.fromhex(message_id)
        timer = _TIMER.pack(TIMERS.index("answers"), at) + key
        about = self._get("timers", timer)
        first = self._get("subjects", about) if about else None
        if about and first is not None and first[:32] == key:
            self._txn.delete(about, db=self._dbs["subjects"])
        self._txn.delete(timer, db=self._dbs["timers"])
        self._txn.delete(key, db=self._dbs["inbox"])

    def count_evidence(self, culprit: str) -> int:
        """Count one more proof of misconduct kept against the key ``culprit``; return how
        many there were before."""
        key = f"evidence:{culprit}"
        kept = int(self.meta(key) or 0)
        self.put_meta(key, str(kept + 1))
        return kept

    def put_meta(self, key: str, value: str) -> None:
        self._txn.put(key.encode("ascii"), value.encode("utf-8"), db=self._dbs["meta"])


def _work(ticket: _Ticket, writer: Writer) -> Any:
    """Run one work; it is refused (raises) if it broke the books."""
    result = ticket.work(writer)
    writer.close_books()
    return result


class Failed:
    """What :meth:`Store.write_each` gives for a work that raised."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class _Ticket:
    """One caller's work waiting for a group commit, and what became of it."""

    __slots__ = ("error", "result", "work")

    def __init__(self, work: Callable[[Writer], Any]) -> None:
        self.work = work
        self.result: Any = None
        self.error: BaseException | None = None


class Store:
    """One LMDB environment per validator.

    Args:
        path: the directory of the environment (created if missing).
        map_size: the initial map size in bytes; the map doubles when full.
        max_map_size: the map never grows past this (None: until the disk is full).
    """

    def __init__(self, path: str | os.PathLike[str], *, map_size: int = DEFAULT_MAP_SIZE,
                 max_map_size: int | None = None) -> None:
        self.path = Path(path)
        self.map_size = map_size
        self.max_map_size = max_map_size
        self._env: lmdb.Environment | None = None
        self._dbs: dict[str, Any] = {}
        self._pid = -1
        # Told how long each group commit took and how many works it held (the server's
        # metrics); called by the committing thread after the commit, outside every lock.
        self.on_commit: Callable[[float, int], None] | None = None
        # The thread that holds the commit lock commits every write queued meanwhile (group
        # commit); reads never wait for it, LMDB's readers see the last commit meanwhile.
        self._commit_lock = threading.Lock()
        # Held only for moments: the environment, the queue and the counts below. The map may
        # be resized only while no other transaction of this process is open, so a resize
        # waits for the open ones to end and new ones wait for the resize.
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # a read or a write ended, or a resize
        self._queue: list[_Ticket] = []
        self._readers = 0  # read transactions open in this process
        self._mine = threading.local()  # ... and in this thread
        self._writing = False  # the committing thread has its write transaction open
        self._resizing = 0  # resizes waiting for the others' transactions to end

    def _open(self) -> lmdb.Environment:
        if self._env is not None and self._pid == os.getpid():
            return self._env
        # A new process (after fork) must open its own environment, never reuse the parent's.
        self.path.mkdir(parents=True, exist_ok=True)
        # An existing environment keeps the map size it has grown to (0 adopts it): opening it
        # from an operator's command must neither shrink nor grow it.
        exists = (self.path / "data.mdb").exists()
        initial = self.map_size if self.max_map_size is None else min(self.map_size,
                                                                      self.max_map_size)
        try:
            env = lmdb.open(str(self.path), map_size=0 if exists else initial,
                            max_dbs=len(_DBS) + 4,
                            sync=True, metasync=True, lock=True, subdir=True,
                            max_readers=MAX_READERS)
            self._dbs = {name: env.open_db(name.encode("ascii")) for name in _DBS}
            _move_holds_apart(env, self._dbs)
            _list_open_offers(env, self._dbs)
            if not exists:  # nothing written yet: its books are exact
                with env.begin(write=True) as txn:
                    txn.put(BOOKS.encode("ascii"), b"1", db=self._dbs["meta"])
        except lmdb.Error as e:
            raise StoreError(f"cannot open the store at {self.path}: {e}") from e
        self._env, self._pid = env, os.getpid()
        return env

    @contextmanager
    def read(self) -> Iterator[Reader]:
        """A consistent read-only snapshot.

        The lock is held only to begin it: reads of other threads, and the group commit, go on
        while it is open; only a map resize waits for it to end.
        """
        _, txn = self._start(write=False)
        reader = Reader(txn, self._dbs)
        try:
            yield reader
        finally:
            reader._end()  # the last reference: the slot is freed with the transaction
            txn.abort()
            del txn
            with self._lock:
                self._readers -= 1
                self._mine.count -= 1
                if self._resizing:
                    self._changed.notify_all()

    def write(self, work: Callable[[Writer], T]) -> T:
        """Run ``work`` in a write transaction and commit it durably; return its result.

        Group commit: writes that arrive while another thread of this process is committing
        wait for it, then the first of them commits all of them in one transaction and one
        fsync. Each work runs in a nested transaction of its own, so one that raises writes
        nothing and the others still commit; each caller gets its own result or exception,
        and only after the commit that holds its writes.

        ``work`` may run more than once (when the map must grow): it must do nothing but read
        and write through the Writer it is given.

        Raises:
            StoreFullError: the map cannot grow (``max_map_size`` or the disk); nothing written.
            StoreError: any other store failure; nothing written.
        """
        [outcome] = self.write_each([work])
        if isinstance(outcome, Failed):
            raise outcome.error
        return outcome  # type: ignore[no-any-return]

    def write_each(self, works: list[Callable[[Writer], Any]]) -> list[Any]:
        """Run many works in one group commit, each on its own as :meth:`write` does; return
        each one's result, or a :class:`Failed` holding the exception it raised."""
        tickets = [_Ticket(work) for work in works]
        with self._lock:
            self._queue.extend(tickets)
        took: tuple[float, int] | None = None
        with self._commit_lock:
            # The committing thread takes the whole queue and settles it before it lets go:
            # ours are settled, or still queued and ours to commit now.
            with self._lock:
                batch, self._queue = self._queue, []
            if batch:
                started = time.perf_counter()
                self._commit(batch)
                took = time.perf_counter() - started, len(batch)
        if took is not None and self.on_commit is not None:
            self.on_commit(*took)
        return [t.result if t.error is None else Failed(t.error) for t in tickets]

    def _commit(self, batch: list[_Ticket]) -> None:
        """Run every work of ``batch`` in one write transaction and commit it (commit lock
        held); each ticket gets its result or error."""
        try:
            while not self._try_commit(batch):  # the map was full and has grown: again
                pass
        except StoreError as e:
            for ticket in batch:  # nothing of the batch was written: each caller hears why
                ticket.result, ticket.error = None, e if len(batch) == 1 else type(e)(e.message)
        except BaseException as e:
            for ticket in batch:
                ticket.result, ticket.error = None, StoreError(f"the write was interrupted: {e!r}")
            raise

    def _try_commit(self, batch: list[_Ticket]) -> bool:
        """One attempt at committing ``batch``; False when the map was full (it has grown)."""
        env, txn = self._start(write=True)
        try:
            try:
                if self._run(env, txn, batch):
                    txn.commit()
                else:
                    txn.abort()
            except BaseException:
                txn.abort()
                raise
            finally:
                self._wrote()
        except lmdb.MapFullError:
            self._grow(env)
            return False
        except lmdb.Error as e:
            if isinstance(e, lmdb.DiskError) or getattr(e, "errno", None) == errno.ENOSPC \
                    or "No space left" in str(e):
                raise StoreFullError(f"the disk is full: {e}") from e
            raise StoreError(f"the write failed and was rolled back: {e}") from e
        return True

    def _wrote(self) -> None:
        """The write transaction has ended (committed or aborted): a resize may go on."""
        with self._lock:
            if self._writing:
                self._writing = False
                if self._resizing:
                    self._changed.notify_all()

    def _run(self, env: lmdb.Environment, txn: lmdb.Transaction, batch: list[_Ticket]) -> bool:
        """Run the works in ``txn``; False when nothing is left to commit."""
        if len(batch) == 1:  # alone: no nested transaction needed, its error aborts the whole
            ticket = batch[0]
            try:
                ticket.result, ticket.error = _work(ticket, Writer(txn, self._dbs, env)), None
            except lmdb.Error:
                raise
            except Exception as e:
                ticket.result, ticket.error = None, e
                return False
            return True
        for ticket in batch:
            child = env.begin(write=True, parent=txn)
            try:
                ticket.result, ticket.error = _work(ticket, Writer(child, self._dbs, env)), None
            except lmdb.Error:
                child.abort()
                raise  # the store itself failed: the whole batch is retried or refused
            except Exception as e:  # this work refused: it alone writes nothing
                child.abort()
                ticket.result, ticket.error = None, e
            else:
                child.commit()
        return True

    def _start(self, *, write: bool) -> tuple[lmdb.Environment, lmdb.Transaction]:
        """Begin a transaction once no resize is pending, and count it open (a resize waits
        for it): the committing thread's write, or a read of this thread."""
        with self._lock:
            self._changed.wait_for(lambda: self._resizing == 0)
            env = self._open()
            try:
                txn = self._begin(env, write=write)
            except lmdb.Error as e:
                raise StoreError(f"cannot {'start a write' if write else 'read the store'}: "
                                 f"{e}") from e
            if write:
                self._writing = True
            else:
                self._readers += 1
                self._mine.count = getattr(self._mine, "count", 0) + 1
        return env, txn

    def _begin(self, env: lmdb.Environment, *, write: bool) -> lmdb.Transaction:
        """Begin a transaction (``self._lock`` held).

        Another process grew the map: adopt its size, again and again while the others go on
        growing it meanwhile (a new store doubles often, from every worker at once).
        """
        for _ in range(_ADOPT_ATTEMPTS):
            try:
                return env.begin(write=write)
            except lmdb.MapResizedError:
                self._resize(env, 0)
            except lmdb.ReadersFullError:
                # slots of processes that died (a worker killed) stay taken until checked
                if not env.reader_check():
                    raise
        return env.begin(write=write)  # one more try; a failure now is the store's error

    @property
    def is_open(self) -> bool:
        """Whether this process has the environment open (it opens on first use)."""
        return self._env is not None and self._pid == os.getpid()

    def reader_slots(self) -> int:
        """The LMDB reader slots taken now, by every process of the bank (of MAX_READERS):
        for the health check and the tests that count what hostile traffic left behind."""
        with self._lock:
            env = self._open()
            env.reader_check()
            return sum(1 for line in env.readers().splitlines()[1:] if line.strip())

    def _grow(self, env: lmdb.Environment) -> None:
        """Double the map, up to ``max_map_size`` (commit lock held, no transaction open)."""
        with self._lock:
            current = env.info()["map_size"]
            if self.max_map_size is not None and current >= self.max_map_size:
                raise StoreFullError(f"the store is full at its maximum size of {current} "
                                     "bytes")
            new = current * 2 if self.max_map_size is None else min(current * 2,
                                                                    self.max_map_size)
            self._resize(env, new)

    def _resize(self, env: lmdb.Environment, size: int) -> None:
        """Set the map size once no other transaction of this process is open (``self._lock``
        held; new ones wait meanwhile)."""
        self._resizing += 1
        try:
            self._changed.wait_for(lambda: not self._writing and
                                   self._readers == getattr(self._mine, "count", 0))
            env.set_mapsize(size)
        finally:
            self._resizing -= 1
            self._changed.notify_all()

    def close(self) -> None:
        with self._commit_lock, self._lock:
            if self._env is not None and self._pid == os.getpid():
                self._env.close()
            self._env = None


_BUCKET = struct.Struct(">dQ")  # tokens left, time of the last update (ms)


class RateBuckets:
    """Token buckets per key, shared by every process of a bank (all its workers).

    A separate, small LMDB environment with sync off: a bucket is not money, losing the last
    seconds of it in a crash costs nothing, and a rate check must not wait for a disk flush or
    for the ledger's write lock. When the map fills (many distinct keys), the buckets are
    forgotten and start full again.
    """

    MAP_SIZE = 32 << 20
    # Buckets kept at most, well below what the map holds (about 7,500 a MiB): past it, idle
    # ones (full again) are let go, and if none is, a new key shares one overflow bucket.
    # Found by the outside attacker: at a full map every new key's request failed.
    CAPACITY = 100_000
    OVERFLOW = b"\0overflow"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._env: lmdb.Environment | None = None
        self._pid = -1
        # LMDB must not be opened twice in one process: threads that find it closed take turns.
        self._open_lock = threading.Lock()
        self._scan_after = 0  # ms: when idle buckets may be looked for again

    def _open(self) -> lmdb.Environment:
        env, pid = self._env, self._pid
        if env is not None and pid == os.getpid():
            return env
        with self._open_lock:
            if self._env is None or self._pid != os.getpid():
                self.path.mkdir(parents=True, exist_ok=True)
                self._env = lmdb.open(str(self.path), map_size=self.MAP_SIZE, sync=False,
                                      metasync=False, subdir=True, max_dbs=0)
                self._pid = os.getpid()
            return self._env

    def take(self, key: str, now_ms: int, rate: float, burst: float) -> int:
        """Take one token from ``key``'s bucket (refilled at ``rate`` per second up to
        ``burst``). Returns 0 if taken, else the milliseconds until one will be there."""
        env = self._open()
        k = key.encode("utf-8")[:500]
        try:
            with env.begin(write=True) as txn:
                if txn.get(k) is None and txn.stat(env.open_db())["entries"] >= self.CAPACITY \
                        and not self._let_idle_go(txn, now_ms, rate, burst):
                    k = self.OVERFLOW
                return self._take(txn, k, now_ms, rate, burst)
        except lmdb.MapFullError:
            return 0  # a budget is not money: better to serve than to fail

    def _let_idle_go(self, txn: lmdb.Transaction, now_ms: int, rate: float, burst: float
                     ) -> bool:
        """Forget buckets that are full again (nothing to remember); whether any went. At
        most a scan per second: an attacker's keys keep the buckets busy, not the scans."""
        if now_ms < self._scan_after:
            return False
        self._scan_after = now_ms + 1000
        idle = [bytes(k) for k, v in txn.cursor()
                if min(burst, _BUCKET.unpack(v)[0] + max(0, now_ms - _BUCKET.unpack(v)[1])
                       * rate / 1000) >= burst]
        for k in idle:
            txn.delete(k)
        return bool(idle)

    @staticmethod
    def _take(txn: lmdb.Transaction, k: bytes, now_ms: int, rate: float, burst: float) -> int:
        raw = txn.get(k)
        tokens, last = (burst, now_ms) if raw is None else _BUCKET.unpack(raw)
        tokens = min(burst, tokens + max(0, now_ms - last) * rate / 1000)
        if tokens < 1:
            txn.put(k, _BUCKET.pack(tokens, now_ms))
            return max(1, int((1 - tokens) * 1000 / rate))
        txn.put(k, _BUCKET.pack(tokens - 1, now_ms))
        return 0
