"""The state of one chain after its last entry, and the one function that advances it.

The validator (deciding what to sign) and the offline verifier (checking what was signed) both
advance a chain through :meth:`ChainState.advance`, so the two can never disagree on what an
entry does to a balance.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from tchain.encoding import encode_built
from tchain.errors import EncodingError, StoreError, VerificationError
from tchain.htlc import claim_fits_lock, claimed_lock
from tchain.model import (
    RECOVERY_DELAY_MS,
    Body,
    CancelBody,
    CancelRecoveryBody,
    ClaimBody,
    Effect,
    LockBody,
    OfferBody,
    PaymentBody,
    PlanBody,
    RecoverBody,
    RedeemBody,
    RegisterBody,
    RotateKeyBody,
    SignedEntry,
    SignedIntent,
    TakeBody,
    Terms,
    fill_price,
)
from tchain.values import MAX_AMOUNT, UAI

__all__ = ["NOT_READ", "Balance", "ChainState", "Hold", "Holds", "HoldsNotLoadedError",
           "LoadedHolds", "address_of", "available", "check_settle_evidence", "check_take_terms",
           "closed_hold", "closing_effects", "entry_effects", "fill_effects", "filled_hold",
           "holds_read",
           "offer_hold", "settled_by", "taken_by"]

# Entry kinds whose value sent counts against the chain's daily limit.
SENDING_KINDS = frozenset({"payment", "redeem", "offer", "take", "lock", "plan"})
# Entry kinds that open a hold (a cross-bank payment, an offer, a take, a lock, a plan's hold)
# and that close one.
OPENING_KINDS = frozenset({"payment", "offer", "take", "lock", "plan"})
CLOSING_KINDS = frozenset({"cancel", "release", "settle"})
# The maker's side of a partial take: settles part of an offer's hold, leaves the rest open.
FILL = "fill"

DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class Balance:
    balance: int = 0
    held: int = 0

    @property
    def available(self) -> int:
        return self.balance - self.held

    def to_dict(self) -> dict[str, str]:
        return {"balance": str(self.balance), "held": str(self.held)}


class _Decoded:
    """States by their stored bytes, lately written or read: cleared when full (no order to
    keep, and safe for threads: each step is one dict operation). Small: the chains being
    written now are what it is for, and every state it keeps alive is more for the garbage
    collector to walk."""

    LIMIT = 4 << 20  # bytes of keys
    COUNT = 1024  # states

    def __init__(self) -> None:
        self._states: dict[bytes, ChainState] = {}
        self._size = 0

    def get(self, raw: bytes) -> ChainState | None:
        return self._states.get(raw)

    def remember(self, raw: bytes, state: ChainState) -> None:
        if self._size + len(raw) > self.LIMIT or len(self._states) >= self.COUNT:
            self._states.clear()
            self._size = 0
        if self._states.setdefault(raw, state) is state:
            self._size += len(raw)


_DECODED = _Decoded()


def address_of(name: str, owner: str, validator_key: str, validator_name: str) -> str:
    """A chain's address: ``name*bank`` for a customer, the bare bank name for the bank's own."""
    if owner == validator_key and name == validator_name:
        return validator_name
    return f"{name}*{validator_name}"


def available(state: ChainState, asset: str) -> int:
    """What the chain may still send of ``asset``: balance minus held."""
    return state.balances.get(asset, Balance()).available


@dataclass(frozen=True, slots=True)
class Hold:
    """Value set aside by one entry (``height``) until a later entry settles or releases it.

    ``get`` is what the chain receives when an offer or take settles (None for a payment);
    ``day`` the UTC day it was opened on (None for holds kept before it was recorded): what it
    counted against the day's limit comes back if it is released that day.

    An offer's hold may be filled in parts (docs/adr/0007-partial-fills.md): ``amount`` is
    what is still held, ``filled`` what fills took of it so far, so ``amount + filled`` is
    what the offer sells and ``get`` what it asks for all of it; ``min_fill`` is the offer's
    (None: whole only). Both are stored only when set, so the bytes of every other hold are
    what they were. ``window`` is the offer's selection window (docs/adr/0009-best-taker.md):
    a take of an offer with one may give more than the price (a bid), and the maker gets what
    it gave; stored only when set.
    """

    kind: str
    height: int
    asset: str
    amount: int
    get: Terms | None = None
    day: int | None = None
    filled: int = 0
    min_fill: int | None = None
    window: int | None = None
    hash: str | None = None
    expires: int | None = None

    @property
    def sells(self) -> int:
        """What the offer sold when it was made: what remains and what fills took."""
        return self.amount + self.filled

    def price(self, amount: int) -> int:
        """What ``amount`` of this offer's hold costs a taker (the offer's rate, rounded up)."""
        assert self.get is not None, "a price is an offer's"
        return fill_price(self.sells, self.get.amount, amount)

    def to_bytes(self) -> bytes:
        """The stored bytes (canonical), under the id of the entry that opened the hold."""
        return encode_built(self.to_dict())

    @classmethod
    def from_bytes(cls, raw: bytes) -> Hold:
        return cls.from_dict(json.loads(raw))

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind, "height": self.height, "asset": self.asset,
                             "amount": str(self.amount)}
        if self.get is not None:
            d["get"] = self.get.to_dict()
        if self.day is not None:
            d["day"] = self.day
        if self.filled:
            d["filled"] = str(self.filled)
        if self.min_fill is not None:
            d["min_fill"] = str(self.min_fill)
        if self.window is not None:
            d["window"] = self.window
        if self.hash is not None:  # a lock's (docs/adr/0008-hash-time-locks.md)
            d["hash"], d["expires"] = self.hash, self.expires
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Hold:
        get = None if "get" not in d else Terms(UAI.parse(d["get"]["asset"]),
                                                 int(d["get"]["amount"]))
        return cls(d["kind"], d["height"], d["asset"], int(d["amount"]), get, d.get("day"),
                   int(d.get("filled", "0")),
                   None if "min_fill" not in d else int(d["min_fill"]),
                   window=d.get("window"), hash=d.get("hash"), expires=d.get("expires"))


class Holds(Mapping[str, Hold]):
    """A chain's open holds, by the id of the entry that opened each: those the chain had when
    its state was read (``base``), and those opened and closed since, kept apart so that the
    store writes only them.

    Why not a dict inside the state: a chain may have thousands of holds open (payments in
    flight, offers), and a dict copied on every change and written with every entry made each
    entry cost more the more holds were open. The store keeps each hold under a key of its own
    and gives a state read from it a ``base`` of the holds it was asked to load
    (:class:`LoadedHolds`, see validator.store); the verifier's base is an empty dict and all
    it sees opened stays here.
    """

    __slots__ = ("_base", "_closed", "_opened")

    def __init__(self, base: Mapping[str, Hold] | None = None,
                 opened: Mapping[str, Hold] | None = None,
                 closed: frozenset[str] = frozenset()) -> None:
        self._base: Mapping[str, Hold] = {} if base is None else base
        self._opened: Mapping[str, Hold] = {} if opened is None else opened
        self._closed = closed

    def __getitem__(self, hold_id: str) -> Hold:
        hold = self._opened.get(hold_id)
        if hold is not None:
            return hold
        if hold_id in self._closed:
            raise KeyError(hold_id)
        return self._base[hold_id]

    def __iter__(self) -> Iterator[str]:
        opened, closed = self._opened, self._closed
        yield from (k for k in self._base if k not in closed and k not in opened)
        yield from opened

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        return f"Holds({dict(self.items())!r})"

    def changed(self, close: str | None, opened: tuple[str, Hold] | None) -> Holds:
        """These holds with ``close`` closed and ``opened`` (its id, the hold) open."""
        now_open, closed = self._opened, self._closed
        if close is not None:
            if close in now_open:  # opened since the base was read: never written
                now_open = {k: v for k, v in now_open.items() if k != close}
            else:
                closed = closed | {close}
        if opened is not None:
            now_open = {**now_open, opened[0]: opened[1]}
        return Holds(self._base, now_open, closed)

    def changes(self) -> tuple[Mapping[str, Hold], frozenset[str]]:
        """What changed since the base was read: the holds opened, the ids closed."""
        return self._opened, self._closed


class HoldsNotLoadedError(LookupError):
    """A rule looked up a hold the engine did not load for it: our bug, never the customer's.

    Not a TChainError, so nothing refuses an intent with it or takes it as a signal: the
    engine loads every hold a decision reads (:func:`holds_read`) before the rules run.
    """


class LoadedHolds(Mapping[str, Hold]):
    """Some of a chain's open holds, loaded for one decision: every id in ``looked_up``, and
    among them the ones ``found`` open. Any other id, a listing and a count are refused
    (:class:`HoldsNotLoadedError`): guessing "none open" could release value twice.

    Why not every hold: a chain may have thousands open (payments in flight, offers), and
    an intent closes at most one; so the engine loads that one and a payment's cost does
    not grow with the holds open on its chain.
    """

    __slots__ = ("_found", "_looked_up")

    def __init__(self, found: Mapping[str, Hold], looked_up: frozenset[str]) -> None:
        self._found = found
        self._looked_up = looked_up | found.keys()

    def __getitem__(self, hold_id: str) -> Hold:
        if hold_id not in self._looked_up:
            raise HoldsNotLoadedError(f"hold {hold_id} looked up on a chain state whose holds "
                                      f"were not loaded for it (loaded: "
                                      f"{sorted(self._looked_up)})")
        return self._found[hold_id]

    def __iter__(self) -> Iterator[str]:
        raise HoldsNotLoadedError("holds listed on a chain state loaded with only some of them")

    def __len__(self) -> int:
        raise HoldsNotLoadedError("holds counted on a chain state loaded with only some of them")


NOT_READ = Holds(LoadedHolds({}, frozenset()))


def _evidence(entry: SignedEntry, index: int = 0) -> SignedEntry:
    try:
        return entry.evidence_entry(index)
    except IndexError as e:
        raise VerificationError(f"entry {entry.height} ({entry.kind}) needs a signed entry as "
                                f"evidence {index}, and carries {len(entry.evidence)}") from e
    except EncodingError as e:
        raise VerificationError(f"entry {entry.height} ({entry.kind}) needs a signed entry as "
                                f"evidence {index}: {e.message}") from e


def closed_hold(entry: SignedEntry) -> str | None:
    """The id of the entry whose hold ``entry`` closes, or None if it closes none.

    A cancel names the offer; a release carries the holding entry; a settle carries the peer's
    entry that completes the flow (see :func:`settled_by`).
    """
    return _closed_hold(entry, _evidence(entry) if entry.kind == "settle" else None)


def holds_read(intent: SignedIntent) -> frozenset[str]:
    """The ids of the holds a decision on ``intent`` may look up, on its own chain or on the
    chain it settles with here: the engine loads these (and only these) before the rules run.

    A cancel closes its offer's hold; a take of an offer made here closes the maker's hold
    (the taker's own hold it opens is not read, it is made); a claim of a lock made here
    closes the payer's. Nothing else reads a hold.
    """
    body = intent.body
    if isinstance(body, CancelBody | TakeBody):
        return frozenset({body.offer})
    if isinstance(body, ClaimBody):
        return frozenset({body.lock})
    return frozenset()


def _closed_hold(entry: SignedEntry, peer: SignedEntry | None) -> str | None:
    if entry.kind == "cancel":
        if entry.intent is None or not isinstance(entry.intent.body, CancelBody):
            raise VerificationError(f"entry {entry.height} (cancel) must carry its owner's "
                                    "cancel intent")
        return entry.intent.body.offer
    if entry.kind == "release":
        return _evidence(entry).id
    if peer is not None:
        return settled_by(peer)
    return None


def settled_by(peer: SignedEntry) -> str:
    """The id of our holding entry that a peer's entry completes.

    A credit carries our payment as evidence; a take names our offer; a maker's settle carries
    our take as evidence.
    """
    if peer.kind == "take" and peer.intent is not None and isinstance(peer.intent.body, TakeBody):
        return peer.intent.body.offer
    if peer.kind in ("credit", "settle", FILL, "claim"):
        return _evidence(peer).id
    raise VerificationError(f"a settle's evidence must be a credit, a take, a settle or a "
                            f"fill, got {peer.kind}")


def check_take_terms(hold: Hold, take: TakeBody) -> str:
    """Check a take's terms against the offer hold it takes from, and say which entry the
    maker's chain answers it with: ``"settle"`` (it takes all that remains, closing the
    hold) or ``"fill"`` (a part, leaving the rest open).

    The take gives the offer's bought asset and gets its sold one; it gets ``n`` at least 1
    and no more than remains; it pays exactly the price of ``n`` (the offer's rate, rounded
    up: :func:`tchain.model.fill_price`); a part less than all that remains needs an offer
    that may be filled in parts and is at least its ``min_fill``. A take of the whole of an
    offer never filled is exactly the mirror of the offer, as before partial fills.

    Raises:
        VerificationError: naming the broken term (the engine refuses with its code).
    """
    assert hold.kind == "offer" and hold.get is not None
    if str(take.buy.asset) != hold.asset or take.sell.asset != hold.get.asset:
        raise VerificationError(f"the take's terms do not mirror the offer's: it gives "
                                f"{take.sell.asset} for {take.buy.asset}, the offer sells "
                                f"{hold.asset} for {hold.get.asset}")
    n = take.buy.amount
    if n > hold.amount:
        raise VerificationError(f"the take gets {n} {hold.asset}; the offer has {hold.amount} "
                                "left")
    if take.sell.amount != hold.price(n) and \
            (hold.window is None or take.sell.amount < hold.price(n)):
        # a bid above the price only where the offer ranks takes (docs/adr/0009-best-taker.md)
        raise VerificationError(f"the take pays {take.sell.amount} {take.sell.asset} for {n}; "
                                f"the offer's price for it is {hold.price(n)}")
    if n == hold.amount:
        return "settle"
    if hold.min_fill is None:
        raise VerificationError(f"the offer is taken whole or not at all ({hold.amount}); the "
                                f"take gets {n}")
    if n < hold.min_fill:
        raise VerificationError(f"the take gets {n} {hold.asset}, less than the offer's "
                                f"min_fill {hold.min_fill} and less than the {hold.amount} "
                                "left")
    return FILL


def offer_hold(offer: SignedEntry, remaining: int | None = None) -> Hold:
    """The hold an offer entry opened on its maker's chain, with ``remaining`` of it left (None:
    all of it): what a take's terms are checked against where the maker's chain is not."""
    body = offer.intent.body if offer.intent is not None else None
    assert isinstance(body, OfferBody)
    left = body.sell.amount if remaining is None else min(remaining, body.sell.amount)
    return Hold("offer", offer.height, str(body.sell.asset), left, body.buy,
                filled=body.sell.amount - left, min_fill=body.min_fill, window=body.window)


def fill_effects(hold: Hold, amount: int, gives: int | None = None) -> tuple[Effect, ...]:
    """The effects of the maker's ``fill`` of ``amount`` of an offer's hold: the part out of
    the hold and the balance, and in what the take ``gives`` (its price when not given: a
    take whose terms passed :func:`check_take_terms` gives exactly that, but for a bid on an
    offer with a window, docs/adr/0009-best-taker.md)."""
    assert hold.get is not None
    return (Effect(hold.asset, -amount, -amount),
            Effect(str(hold.get.asset), hold.price(amount) if gives is None else gives, 0))


def taken_by(peer: SignedEntry | None) -> TakeBody | None:
    """The take intent a peer's entry carries, if it is a take (what an offer's settle or fill
    brings in is what it gives)."""
    body = None if peer is None or peer.intent is None else peer.intent.body
    return body if peer is not None and peer.kind == "take" and isinstance(body, TakeBody) \
        else None


def check_settle_evidence(hold: Hold, peer: SignedEntry, kind: str = "settle") -> None:
    """Check that the peer's entry did its side of the flow ``hold`` belongs to, for an entry
    of ``kind`` (a settle, or the maker's fill of part of an offer)."""
    expected: tuple[Effect, ...]
    if hold.kind in ("payment", "plan") and peer.kind == "credit":
        expected = (Effect(hold.asset, hold.amount, 0),)
    elif hold.kind == "offer" and peer.kind == "take" and hold.get is not None:
        body = peer.intent.body if peer.intent is not None else None
        if not isinstance(body, TakeBody):
            raise VerificationError("the take carries no take intent")
        if check_take_terms(hold, body) != kind:
            raise VerificationError(f"a take of {body.buy.amount} of the {hold.amount} left "
                                    f"is answered by a {'settle' if kind == FILL else FILL}, "
                                    f"not a {kind}")
        expected = (Effect(str(body.sell.asset), 0, body.sell.amount),)
    elif hold.kind == "lock" and peer.kind == "claim":
        try:
            claim_fits_lock(peer, claimed_lock(peer))
        except VerificationError as e:
            raise VerificationError(f"the claim does not open the lock: {e.message}") from e
        expected = (Effect(hold.asset, hold.amount, 0),)
    elif hold.kind == "take" and peer.kind in ("settle", FILL) and hold.get is not None:
        expected = (Effect(str(hold.get.asset), -hold.get.amount, -hold.get.amount),
                    Effect(hold.asset, hold.amount, 0))
    else:
        raise VerificationError(f"a {peer.kind} cannot settle a {hold.kind}")
    if peer.effects != expected:
        raise VerificationError(f"the peer's {peer.kind} has effects "
                                f"{[e.to_dict() for e in peer.effects]}, expected "
                                f"{[e.to_dict() for e in expected]}")


def entry_effects(kind: str, body: Body | None, bank: str) -> tuple[Effect, ...]:
    """The effects an entry of ``kind`` at ``bank`` must have, but for one that closes a hold
    (:func:`closing_effects`): what the rules sign and what a verifier expects, one rule.

    ``body`` is the body of the intent the entry carries; for a credit, of the debit it
    credits (its evidence). A payment or issue to another bank holds its amount until the
    peer credits it; a payment, issue or redeem here takes the amount out; an offer or a take
    holds what it sells; a credit brings the amount in; anything else moves nothing.
    """
    if kind in ("credit", "claim"):  # a claim credits the lock it claims
        if not isinstance(body, PaymentBody | RedeemBody | LockBody | PlanBody):
            raise ValueError(f"a {kind} credits a payment, issue, redeem, lock or plan hold, "
                             f"got {body!r}")
        return (Effect(str(body.asset), body.amount, 0),)
    # a lock, or a plan's hold (paid later to its ``to``, or released)
    if isinstance(body, LockBody | PlanBody):
        return (Effect(str(body.asset), 0, body.amount),)
    if isinstance(body, OfferBody | TakeBody):
        return (Effect(str(body.sell.asset), 0, body.sell.amount),)
    if isinstance(body, PaymentBody) and body.to_validator not in (None, bank):
        return (Effect(str(body.asset), 0, body.amount),)  # held for the peer
    if isinstance(body, PaymentBody | RedeemBody):
        return (Effect(str(body.asset), -body.amount, 0),)
    return ()


def closing_effects(hold: Hold, kind: str, take: TakeBody | None = None
                    ) -> tuple[Effect, ...]:
    """The effects an entry of ``kind`` closing ``hold`` must have (an offer's settle: for
    the ``take`` it answers, which may bid more than the price, docs/adr/0009)."""
    if kind in ("cancel", "release"):
        return (Effect(hold.asset, 0, -hold.amount),)
    if hold.kind == "offer":  # all that remains, at its price (all of it: the offer's)
        return fill_effects(hold, hold.amount, None if take is None else take.sell.amount)
    out: tuple[Effect, ...] = (Effect(hold.asset, -hold.amount, -hold.amount),)
    if hold.get is not None:
        out += (Effect(str(hold.get.asset), hold.get.amount, 0),)
    return out


def _opened_hold(entry: SignedEntry) -> Hold | None:
    if entry.kind not in OPENING_KINDS:
        return None
    held = [e for e in entry.effects if e.held > 0]
    if not held:
        return None  # a payment inside the bank holds nothing
    body = entry.intent.body if entry.intent is not None else None
    get = body.buy if isinstance(body, OfferBody | TakeBody) else None
    min_fill = body.min_fill if isinstance(body, OfferBody) else None
    window = body.window if isinstance(body, OfferBody) else None
    lock = body if isinstance(body, LockBody) else None
    return Hold(entry.kind, entry.height, held[0].asset, held[0].held, get,
                entry.time // DAY_MS, min_fill=min_fill, window=window,
                hash=None if lock is None else lock.hash,
                expires=None if lock is None else lock.expires)


def filled_hold(entry: SignedEntry, peer: SignedEntry, holds: Mapping[str, Hold]
                 ) -> tuple[str, Hold]:
    """The offer hold a ``fill`` fills, and what it holds after: checked against the take it
    carries (terms, price, min_fill, what is left) and its effects against the take.

    Raises:
        VerificationError: the fill fills no open offer, or gives more than it holds, or
            takes in less than its price, or is not the fill the take asks for.
    """
    if peer.kind != "take":
        raise VerificationError(f"entry {entry.height} (fill) carries the take it answers, "
                                f"got a {peer.kind}")
    offer_id = settled_by(peer)
    hold = holds.get(offer_id)
    if hold is None or hold.kind != "offer":
        raise VerificationError(f"entry {entry.height} (fill) fills offer {offer_id}, which "
                                "is not open on this chain")
    check_settle_evidence(hold, peer, FILL)
    body = peer.intent.body if peer.intent is not None else None
    assert isinstance(body, TakeBody)
    want = fill_effects(hold, body.buy.amount, body.sell.amount)
    if entry.effects != want:
        raise VerificationError(f"entry {entry.height} (fill) must have effects "
                                f"{[e.to_dict() for e in want]}")
    return offer_id, dataclasses.replace(hold, amount=hold.amount - body.buy.amount,
                                         filled=hold.filled + body.buy.amount)


@dataclass(frozen=True, slots=True)
class Recovery:
    """A recovery of a chain's key waiting to take effect: the ``recover`` entry (its id and
    height) that asked for it, the key it makes the owner, and from when (ms)."""

    entry: str
    height: int
    owner: str
    at: int

    def to_dict(self) -> dict[str, Any]:
        return {"entry": self.entry, "height": self.height, "owner": self.owner, "at": self.at}


@dataclass(frozen=True, slots=True)
class ChainState:
    """Everything the rules need to know about a chain, without reading its entries.

    ``spent`` is what left the chain today (UTC day ``spent_day``), for the daily limit;
    ``recovery`` a recovery of its key waiting to take effect, if one is; ``last_recover``
    the time of the newest ``recover`` intent the chain took (0: none), so that a recover
    cancelled cannot be sent again while its time is still fresh.
    """

    chain: str
    owner: str
    name: str
    address: str
    height: int
    head: str
    seq: int
    kyc: bool
    params: dict[str, Any]
    balances: dict[str, Balance] = field(default_factory=dict)
    spent_day: int = 0
    spent: dict[str, int] = field(default_factory=dict)
    holds: Holds = field(default_factory=Holds)
    recovery: Recovery | None = None
    last_recover: int = 0

    @classmethod
    def genesis(cls, entry: SignedEntry, validator_name: str) -> ChainState:
        """The state right after a genesis entry."""
        if entry.intent is None or not isinstance(entry.intent.body, RegisterBody):
            raise VerificationError("a genesis entry must carry a register intent")
        body = entry.intent.body
        return cls(chain=entry.id, owner=body.owner, name=body.name,
                   address=address_of(body.name, body.owner, entry.validator, validator_name),
                   height=0, head=entry.id, seq=0, kyc=body.kyc is not None, params=body.params)

    def issues(self, asset: str) -> bool:
        """Whether this chain is the issuer of ``asset`` (and so may owe it)."""
        return UAI.parse(asset).issuer == self.address

    def spent_today(self, asset: str, day: int) -> int:
        return self.spent.get(asset, 0) if day == self.spent_day else 0

    def advance(self, entry: SignedEntry) -> ChainState:
        """The state after ``entry``, checking the balance rule of PROTOCOL.md §4 and holds.

        Raises:
            VerificationError: if the entry would leave a non-issuer's available balance, or
                anyone's hold, below zero; or closes a hold that is not open, with other
                effects than the hold calls for.
        """
        holds = self.holds
        if entry.kind == FILL:  # part of an offer's hold out, the rest still open under its id
            offer_id, rest = filled_hold(entry, _evidence(entry), holds)
            holds = holds.changed(offer_id, (offer_id, rest))
        peer = _evidence(entry) if entry.kind == "settle" else None  # parsed once
        closes = _closed_hold(entry, peer)
        hold = None
        if closes is not None:
            hold = holds.get(closes)
            if hold is None:
                raise VerificationError(f"entry {entry.height} ({entry.kind}) closes {closes}, "
                                        "which holds nothing open on this chain")
            want = closing_effects(hold, entry.kind, taken_by(peer))
            if entry.effects != want:
                raise VerificationError(f"entry {entry.height} ({entry.kind}) must have effects "
                                        f"{[e.to_dict() for e in want]}")
            if peer is not None:
                check_settle_evidence(hold, peer)
            elif entry.kind == "cancel" and hold.kind != "offer":
                raise VerificationError(f"entry {entry.height}: a cancel closes offers only")
            elif entry.kind == "release" and hold.expires is not None and \
                    entry.time < hold.expires:
                raise VerificationError(f"entry {entry.height} releases a lock before it "
                                        f"expires at {hold.expires}")
        opened = _opened_hold(entry)
        if closes is not None or opened is not None:
            holds = holds.changed(closes, None if opened is None else (entry.id, opened))
        balances = dict(self.balances)
        day = entry.time // DAY_MS
        spent = dict(self.spent) if day == self.spent_day else {}
        for effect in entry.effects:
            old = balances.get(effect.asset, Balance())
            new = Balance(old.balance + effect.balance, old.held + effect.held)
            if new.held < 0:
                raise VerificationError(f"entry {entry.height} releases more {effect.asset} "
                                        f"than is held ({old.held})")
            if max(abs(new.balance), new.held) > MAX_AMOUNT:
                raise VerificationError(f"entry {entry.height} takes {effect.asset} past "
                                        f"{MAX_AMOUNT}, the most an amount can say")
            if new.available < 0 and not self.issues(effect.asset):
                raise VerificationError(f"entry {entry.height} leaves {effect.asset} available "
                                        f"at {new.available}, below zero")
            balances[effect.asset] = new
            if entry.kind in SENDING_KINDS:
                # a cross-bank payment, an offer and a take hold rather than debit: they count
                # when they are made (found by the outside attacker: a chain at its limit sold
                # 500 by an offer)
                sent = -effect.balance if effect.balance < 0 else effect.held
                spent[effect.asset] = spent.get(effect.asset, 0) + sent
        if hold is not None and hold.day == day and entry.kind in ("release", "cancel"):
            # nothing went: what the hold counted today comes back
            spent[hold.asset] = max(0, spent.get(hold.asset, 0) - hold.amount)
        owner, recovery, last_recover = self._owner_after(entry)
        seq = self.seq
        # a recover is its new key's, not ours; a plan's consent was signed before its seq
        if entry.intent is not None and entry.kind not in ("recover", "plan"):
            seq = entry.intent.seq
            if isinstance(entry.intent.body, RotateKeyBody):
                owner = entry.intent.body.owner
        return ChainState(self.chain, owner, self.name, self.address, entry.height, entry.id,
                          seq, self.kyc, self.params, balances, day, spent, holds, recovery,
                          last_recover)

    def _owner_after(self, entry: SignedEntry) -> tuple[str, Recovery | None, int]:
        """The owner key and the pending recovery after ``entry``: a ``recover`` starts one,
        a ``cancel_recovery`` of it ends it, a ``recovered`` (no earlier than it may) makes
        its key the owner; the newest recover intent's time.

        Raises:
            VerificationError: a recovery started while one is pending, or with a recover no
                later than the last; ended or completed by an entry that does not name it (or
                comes too early); an entry signed by the old key once the recovery's time came.
        """
        pending = self.recovery
        body = entry.intent.body if entry.intent is not None else None
        if pending is not None and entry.time >= pending.at and entry.intent is not None:
            raise VerificationError(f"entry {entry.height} is signed for the chain's old key "
                                    f"after its recovery took effect at {pending.at}")
        if entry.kind == "recover" and isinstance(body, RecoverBody):
            assert entry.intent is not None
            if entry.intent.time <= self.last_recover:
                raise VerificationError(f"entry {entry.height}: a recover intent no later than "
                                        f"the chain's last ({self.last_recover}): a replay")
            if pending is not None:
                raise VerificationError(f"entry {entry.height}: a recovery is pending already "
                                        f"(entry {pending.entry})")
            if body.owner == self.owner:
                raise VerificationError(f"entry {entry.height}: a recovery to the current key")
            delay = int(self.params.get("recovery_delay", RECOVERY_DELAY_MS))
            return (self.owner, Recovery(entry.id, entry.height, body.owner, entry.time + delay),
                    entry.intent.time)
        if entry.kind == "cancel_recovery" and isinstance(body, CancelRecoveryBody):
            if pending is None or body.recovery != pending.entry:
                raise VerificationError(f"entry {entry.height}: no pending recovery "
                                        f"{body.recovery} to cancel")
            return self.owner, None, self.last_recover
        if entry.kind == "recovered":
            asked = _evidence(entry)
            if pending is None or asked.id != pending.entry or entry.time < pending.at:
                raise VerificationError(f"entry {entry.height}: a recovered entry must carry "
                                        "the pending recover entry, no earlier than its delay")
            return pending.owner, None, self.last_recover
        return self.owner, pending, self.last_recover

    def to_dict(self) -> dict[str, Any]:
        """The stored form but the holds, which the store keeps one by one (see Holds)."""
        d = {
            "chain": self.chain, "owner": self.owner, "name": self.name,
            "address": self.address, "height": self.height, "head": self.head, "seq": self.seq,
            "kyc": self.kyc, "params": self.params,
            "balances": {a: b.to_dict() for a, b in self.balances.items()},
            "spent_day": self.spent_day,
            "spent": {a: str(v) for a, v in self.spent.items()},
        }
        if self.recovery is not None:
            d["recovery"] = self.recovery.to_dict()
        if self.last_recover:
            d["last_recover"] = self.last_recover
        return d

    def to_bytes(self) -> bytes:
        """The stored bytes: canonical, so equal states are equal bytes. A head moves with
        every entry, so equal bytes also mean the chain's holds are unchanged."""
        raw = encode_built(self.to_dict())
        _DECODED.remember(raw, self if self.holds is NOT_READ else self.with_holds(NOT_READ))
        return raw

    @classmethod
    def from_bytes(cls, raw: bytes) -> ChainState:
        """The state stored as ``raw``, without its holds (:data:`NOT_READ`: the store's
        Reader.state adds them); the same object again for bytes seen lately."""
        state = _DECODED.get(raw)
        if state is None:
            state = cls.from_dict(json.loads(raw))
            _DECODED.remember(raw, state)
        return state

    def with_holds(self, holds: Holds) -> ChainState:
        return ChainState(self.chain, self.owner, self.name, self.address, self.height,
                          self.head, self.seq, self.kyc, self.params, self.balances,
                          self.spent_day, self.spent, holds, self.recovery, self.last_recover)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ChainState:
        if "holds" in d:  # Store moves them out when it opens a store of an older version
            raise StoreError(f"chain {d['chain']}: a state of the old format, holds inside")
        return cls(
            chain=d["chain"], owner=d["owner"], name=d["name"], address=d["address"],
            height=d["height"], head=d["head"], seq=d["seq"], kyc=d["kyc"], params=d["params"],
            balances={a: Balance(int(b["balance"]), int(b["held"]))
                      for a, b in d["balances"].items()},
            spent_day=d["spent_day"], spent={a: int(v) for a, v in d["spent"].items()},
            holds=NOT_READ,
            recovery=None if "recovery" not in d else Recovery(**d["recovery"]),
            last_recover=d.get("last_recover", 0),
        )
