"""The state of one chain after its last entry, and the one function that advances it.

The validator (deciding what to sign) and the offline verifier (checking what was signed) both
advance a chain through :meth:`ChainState.advance`, so the two can never disagree on what an
entry does to a balance.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from tchain.encoding import encode_built
from tchain.errors import EncodingError, VerificationError
from tchain.model import (
    CancelBody,
    Effect,
    OfferBody,
    RegisterBody,
    RotateKeyBody,
    SignedEntry,
    TakeBody,
    Terms,
)
from tchain.values import UAI

__all__ = ["Balance", "ChainState", "Hold", "address_of", "available", "check_settle_evidence",
           "closed_hold", "closing_effects", "settled_by"]

# Entry kinds that open a hold (a cross-bank payment, an offer, a take) and that close one.
OPENING_KINDS = frozenset({"payment", "offer", "take"})
CLOSING_KINDS = frozenset({"cancel", "release", "settle"})

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

    ``get`` is what the chain receives when an offer or take settles (None for a payment).
    """

    kind: str
    height: int
    asset: str
    amount: int
    get: Terms | None = None
    # Its canonical bytes, made once: a chain's open holds go into every state written for
    # it, and a hold lives on unchanged from state to state until it closes.
    _raw: bytes | None = field(default=None, init=False, compare=False, repr=False)
    # ... and the same as a member of a state's "holds" object: (the id it is kept by, bytes)
    _member: tuple[str, bytes] | None = field(default=None, init=False, compare=False,
                                              repr=False)

    def to_bytes(self) -> bytes:
        if self._raw is None:
            object.__setattr__(self, "_raw", encode_built(self.to_dict()))
        assert self._raw is not None
        return self._raw

    def member_bytes(self, hold_id: str) -> bytes:
        """``"<hold_id>":<its bytes>``, made once: a hold is kept under one id (the entry
        that opened it) for its whole life."""
        member = self._member
        if member is None or member[0] != hold_id:
            member = (hold_id, b'"' + hold_id.encode("ascii") + b'":' + self.to_bytes())
            object.__setattr__(self, "_member", member)
        return member[1]

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind, "height": self.height, "asset": self.asset,
                             "amount": str(self.amount)}
        if self.get is not None:
            d["get"] = self.get.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Hold:
        get = None if "get" not in d else Terms(UAI.parse(d["get"]["asset"]),
                                                 int(d["get"]["amount"]))
        return cls(d["kind"], d["height"], d["asset"], int(d["amount"]), get)


def _evidence(entry: SignedEntry, index: int = 0) -> SignedEntry:
    try:
        return entry.evidence_entry(index)
    except (IndexError, EncodingError) as e:
        raise VerificationError(f"entry {entry.height} ({entry.kind}) needs a signed entry as "
                                f"evidence {index}: {e}") from e


def closed_hold(entry: SignedEntry) -> str | None:
    """The id of the entry whose hold ``entry`` closes, or None if it closes none.

    A cancel names the offer; a release carries the holding entry; a settle carries the peer's
    entry that completes the flow (see :func:`settled_by`).
    """
    return _closed_hold(entry, _evidence(entry) if entry.kind == "settle" else None)


def _closed_hold(entry: SignedEntry, peer: SignedEntry | None) -> str | None:
    if entry.kind == "cancel":
        assert entry.intent is not None and isinstance(entry.intent.body, CancelBody)
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
    if peer.kind in ("credit", "settle"):
        return _evidence(peer).id
    raise VerificationError(f"a settle's evidence must be a credit, a take or a settle, got "
                            f"{peer.kind}")


def check_settle_evidence(hold: Hold, peer: SignedEntry) -> None:
    """Check that the peer's entry did its side of the flow ``hold`` belongs to."""
    expected: tuple[Effect, ...]
    if hold.kind == "payment" and peer.kind == "credit":
        expected = (Effect(hold.asset, hold.amount, 0),)
    elif hold.kind == "offer" and peer.kind == "take" and hold.get is not None:
        body = peer.intent.body if peer.intent is not None else None
        if not isinstance(body, TakeBody) or body.sell != hold.get or \
                (str(body.buy.asset), body.buy.amount) != (hold.asset, hold.amount):
            raise VerificationError("the take's terms do not mirror the offer's")
        expected = (Effect(str(hold.get.asset), 0, hold.get.amount),)
    elif hold.kind == "take" and peer.kind == "settle" and hold.get is not None:
        expected = (Effect(str(hold.get.asset), -hold.get.amount, -hold.get.amount),
                    Effect(hold.asset, hold.amount, 0))
    else:
        raise VerificationError(f"a {peer.kind} cannot settle a {hold.kind}")
    if peer.effects != expected:
        raise VerificationError(f"the peer's {peer.kind} has effects "
                                f"{[e.to_dict() for e in peer.effects]}, expected "
                                f"{[e.to_dict() for e in expected]}")


def closing_effects(hold: Hold, kind: str) -> tuple[Effect, ...]:
    """The effects an entry of ``kind`` closing ``hold`` must have."""
    if kind in ("cancel", "release"):
        return (Effect(hold.asset, 0, -hold.amount),)
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
    return Hold(entry.kind, entry.height, held[0].asset, held[0].held, get)


@dataclass(frozen=True, slots=True)
class ChainState:
    """Everything the rules need to know about a chain, without reading its entries.

    ``spent`` is what left the chain today (UTC day ``spent_day``), for the daily limit.
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
    holds: dict[str, Hold] = field(default_factory=dict)

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
        peer = _evidence(entry) if entry.kind == "settle" else None  # parsed once
        closes = _closed_hold(entry, peer)
        if closes is not None:
            hold = holds.get(closes)
            if hold is None:
                raise VerificationError(f"entry {entry.height} ({entry.kind}) closes {closes}, "
                                        "which holds nothing open on this chain")
            want = closing_effects(hold, entry.kind)
            if entry.effects != want:
                raise VerificationError(f"entry {entry.height} ({entry.kind}) must have effects "
                                        f"{[e.to_dict() for e in want]}")
            if peer is not None:
                check_settle_evidence(hold, peer)
            elif entry.kind == "cancel" and hold.kind != "offer":
                raise VerificationError(f"entry {entry.height}: a cancel closes offers only")
            holds = {k: v for k, v in holds.items() if k != closes}
        opened = _opened_hold(entry)
        if opened is not None:
            holds = {**holds, entry.id: opened}
        balances = dict(self.balances)
        day = entry.time // DAY_MS
        spent = dict(self.spent) if day == self.spent_day else {}
        for effect in entry.effects:
            old = balances.get(effect.asset, Balance())
            new = Balance(old.balance + effect.balance, old.held + effect.held)
            if new.held < 0:
                raise VerificationError(f"entry {entry.height} releases more {effect.asset} "
                                        f"than is held ({old.held})")
            if new.available < 0 and not self.issues(effect.asset):
                raise VerificationError(f"entry {entry.height} leaves {effect.asset} available "
                                        f"at {new.available}, below zero")
            balances[effect.asset] = new
            if entry.kind in ("payment", "redeem"):
                # a cross-bank payment holds rather than debits: it counts when it is made
                sent = -effect.balance if effect.balance < 0 else effect.held
                spent[effect.asset] = spent.get(effect.asset, 0) + sent
        owner = self.owner
        seq = self.seq
        if entry.intent is not None:
            seq = entry.intent.seq
            if isinstance(entry.intent.body, RotateKeyBody):
                owner = entry.intent.body.owner
        return ChainState(self.chain, owner, self.name, self.address, entry.height, entry.id,
                          seq, self.kyc, self.params, balances, day, spent, holds)

    def to_dict(self) -> dict[str, Any]:
        """The stored form (the store keeps it canonical-encoded)."""
        return {**self._fields(), "holds": {k: h.to_dict() for k, h in self.holds.items()}}

    def _fields(self) -> dict[str, Any]:
        """The stored form but the holds."""
        return {
            "chain": self.chain, "owner": self.owner, "name": self.name,
            "address": self.address, "height": self.height, "head": self.head, "seq": self.seq,
            "kyc": self.kyc, "params": self.params,
            "balances": {a: b.to_dict() for a, b in self.balances.items()},
            "spent_day": self.spent_day,
            "spent": {a: str(v) for a, v in self.spent.items()},
        }

    def to_bytes(self) -> bytes:
        """The stored bytes: canonical, so equal states are equal bytes (those of
        ``encode_built(self.to_dict())``, made from each hold's bytes, made once)."""
        fields = self._fields()
        if not self.holds:
            raw = encode_built({**fields, "holds": {}})
        else:
            # the fields that sort before "holds" and after it (ASCII names: JCS order)
            head = encode_built({k: v for k, v in fields.items() if k < "holds"})
            tail = encode_built({k: v for k, v in fields.items() if k > "holds"})
            holds = b",".join([self.holds[k].member_bytes(k) for k in sorted(self.holds)])
            raw = head[:-1] + b',"holds":{' + holds + b"}," + tail[1:]
        _DECODED.remember(raw, self)
        return raw

    @classmethod
    def from_bytes(cls, raw: bytes) -> ChainState:
        """The state stored as ``raw``; the same object again for bytes seen lately (a state
        is immutable, and parsing one with many open holds is costly)."""
        state = _DECODED.get(raw)
        if state is None:
            state = cls.from_dict(json.loads(raw))
            _DECODED.remember(raw, state)
        return state

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ChainState:
        return cls(
            chain=d["chain"], owner=d["owner"], name=d["name"], address=d["address"],
            height=d["height"], head=d["head"], seq=d["seq"], kyc=d["kyc"], params=d["params"],
            balances={a: Balance(int(b["balance"]), int(b["held"]))
                      for a, b in d["balances"].items()},
            spent_day=d["spent_day"], spent={a: int(v) for a, v in d["spent"].items()},
            holds={k: Hold.from_dict(h) for k, h in d.get("holds", {}).items()},
        )
