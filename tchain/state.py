"""The state of one chain after its last entry, and the one function that advances it.

The validator (deciding what to sign) and the offline verifier (checking what was signed) both
advance a chain through :meth:`ChainState.advance`, so the two can never disagree on what an
entry does to a balance.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from tchain.errors import VerificationError
from tchain.model import RegisterBody, RotateKeyBody, SignedEntry
from tchain.values import UAI

__all__ = ["Balance", "ChainState", "address_of", "available"]

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


def address_of(name: str, owner: str, validator_key: str, validator_name: str) -> str:
    """A chain's address: ``name*bank`` for a customer, the bare bank name for the bank's own."""
    if owner == validator_key and name == validator_name:
        return validator_name
    return f"{name}*{validator_name}"


def available(state: ChainState, asset: str) -> int:
    """What the chain may still send of ``asset``: balance minus held."""
    return state.balances.get(asset, Balance()).available


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
        """The state after ``entry``, checking the balance rule of PROTOCOL.md §4.

        Raises:
            VerificationError: if the entry would leave a non-issuer's available balance, or
                anyone's hold, below zero.
        """
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
            if effect.balance < 0 and entry.kind in ("payment", "redeem"):
                spent[effect.asset] = spent.get(effect.asset, 0) - effect.balance
        owner = self.owner
        seq = self.seq
        if entry.intent is not None:
            seq = entry.intent.seq
            if isinstance(entry.intent.body, RotateKeyBody):
                owner = entry.intent.body.owner
        return replace(self, height=entry.height, head=entry.id, seq=seq, owner=owner,
                       balances=balances, spent_day=day, spent=spent)

    def to_dict(self) -> dict[str, Any]:
        """The stored form (the store keeps it canonical-encoded)."""
        return {
            "chain": self.chain, "owner": self.owner, "name": self.name,
            "address": self.address, "height": self.height, "head": self.head, "seq": self.seq,
            "kyc": self.kyc, "params": self.params,
            "balances": {a: b.to_dict() for a, b in self.balances.items()},
            "spent_day": self.spent_day,
            "spent": {a: str(v) for a, v in self.spent.items()},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ChainState:
        return cls(
            chain=d["chain"], owner=d["owner"], name=d["name"], address=d["address"],
            height=d["height"], head=d["head"], seq=d["seq"], kyc=d["kyc"], params=d["params"],
            balances={a: Balance(int(b["balance"]), int(b["held"]))
                      for a, b in d["balances"].items()},
            spent_day=d["spent_day"], spent={a: int(v) for a, v in d["spent"].items()},
        )
