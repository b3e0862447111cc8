"""Shared test helpers: a bank's ledger in-process, customers that sign real intents, and a
snapshot of a store to prove that a refused request changed nothing."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tchain.digest import digest
from tchain.intents import register_request, sign_intent
from tchain.keys import SigningKey
from tchain.model import SignedEntry
from tchain.rules import BankIdentity
from validator.ledger import Ledger
from validator.store import Store

BANK = "bank1.example"
USD = f"{BANK}:USD"
T0 = 1_763_700_000_000


class Clock:
    """A settable clock for in-process ledgers."""

    def __init__(self, now: int = T0) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


@dataclass
class Customer:
    name: str
    key: SigningKey = field(default_factory=SigningKey.generate)
    chain: str = ""
    seq: int = 0

    def intent(self, type_: str, body: dict[str, Any], *, seq: int | None = None,
               time: int = T0) -> dict[str, Any]:
        """A signed intent for the next seq (or the given one)."""
        return sign_intent(self.key, type_, self.chain, self.seq + 1 if seq is None else seq,
                           time, body)

    def payment(self, to: Customer, amount: str, asset: str = USD, **kw: Any) -> dict[str, Any]:
        return self.intent("payment", {"to": to.chain, "to_validator": BANK, "asset": asset,
                                       "amount": amount}, **kw)


def new_ledger(path: Path, clock: Clock | None = None, **store_options: Any) -> Ledger:
    """A bank ledger on a real LMDB store in ``path``, with its own chain registered."""
    key = SigningKey.generate()
    ledger = Ledger(Store(path, **store_options), BankIdentity(key, BANK), clock=clock or Clock())
    ledger.register(register_request(key, BANK, ledger.clock(), bank=BANK,
                                     kyc_record={"legal_name": BANK}))
    return ledger


def join(ledger: Ledger, name: str, *, kyc: bool = True,
         params: dict[str, Any] | None = None) -> Customer:
    customer = Customer(name)
    genesis = ledger.register(register_request(
        customer.key, name, ledger.clock(), bank=ledger.bank.name,
        kyc_record={"legal_name": name.title()} if kyc else None, params=params))
    customer.chain = genesis.id
    return customer


def submit(ledger: Ledger, customer: Customer, doc: dict[str, Any]) -> list[SignedEntry]:
    """Submit through the ledger and advance the customer's seq when accepted."""
    outcome = ledger.submit(doc)
    customer.seq += 1
    return list(outcome.entries)


def snapshot(store: Store) -> dict[str, Any]:
    """Every chain's state, open holds and stored entries: equal snapshots mean nothing
    changed."""
    out: dict[str, Any] = {}
    with store.read() as r:
        for chain in r.chain_ids(None, 10**6):
            state = r.state_with_holds(chain)
            out[chain] = (state.to_dict() if state else None,
                          {k: h.to_dict() for k, h in state.holds.items()} if state else None,
                          tuple(r.entries(chain, 0, 10**6)))
    return out


def asset_totals(store: Store) -> dict[str, int]:
    """The sum of each asset's balance over every chain in the store."""
    totals: dict[str, int] = defaultdict(int)
    with store.read() as r:
        for chain in r.chain_ids(None, 10**6):
            state = r.state(chain)
            assert state is not None
            for asset, balance in state.balances.items():
                totals[asset] += balance.balance
    return dict(totals)


def sign_entry_as(key: SigningKey, entry: dict[str, Any]) -> SignedEntry:
    """Sign a hand-made entry with a bank's key, outside the rules: what a cheating (or
    forging) bank could serve. The result is parsed and checked like any received entry."""
    return SignedEntry.from_dict({"entry": entry, "sig": key.sign_digest(digest("entry", entry))})


def decision(answer: bytes) -> tuple[str, dict[str, Any]]:
    """A peer's answer without its envelope (``ref``, ``time``): what it decided. Another
    message of one hold, take or settlement gets the same decision under its own ``ref``
    (docs/protocol.md §11)."""
    from tchain.encoding import parse
    message = dict(parse(answer)["message"])
    for envelope in ("ref", "time"):
        message.pop(envelope, None)
    return message.pop("type"), message
