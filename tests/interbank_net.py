"""Two or three in-process banks wired directly to each other's Interbank, for unit tests of
the cross-bank flows (the integration tests run the same flows over real HTTP)."""

from __future__ import annotations

import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

from tchain.encoding import parse
from tchain.errors import TChainError
from tchain.intents import register_request, sign_intent
from tchain.keys import SigningKey
from tchain.model import SignedEntry
from tchain.rules import BankIdentity
from tchain.verify import verify_chain
from tests.helpers import Clock, Customer
from validator.audit import audit
from validator.interbank import Interbank
from validator.ledger import Ledger
from validator.store import Store, Writer


class NetBank:
    def __init__(self, path: Path, name: str, clock: Clock, *, fault: str | None = None,
                 deadline_ms: int = 10_000, key: SigningKey | None = None) -> None:
        self.name = name
        self.key = key or SigningKey.generate()  # fixed for golden vectors
        self.ledger = Ledger(Store(path), BankIdentity(self.key, name), clock=clock,
                             settle_deadline_ms=deadline_ms)
        self.ledger.register(register_request(self.key, name, clock(), bank=name,
                                              kyc_record={"legal_name": name}))
        self.interbank = Interbank(self.ledger, fault=fault)
        self.up = True
        self.loses_replies = False  # applies messages it is sent, but its answers are lost

    def join(self, name: str, key: SigningKey | None = None) -> Customer:
        """A new customer ``name`` (with ``key``, fixed for golden vectors)."""
        c = Customer(name) if key is None else Customer(name, key)
        c.chain = self.ledger.register(register_request(
            c.key, name, self.ledger.clock(), bank=self.name,
            kyc_record={"legal_name": name})).id
        return c

    def deposit(self, c: Customer, amount: int, code: str = "USD") -> None:
        self.ledger.deposit(f"{c.name}*{self.name}", f"{self.name}:{code}", amount)

    def intent(self, c: Customer, type_: str, body: dict[str, Any]) -> dict[str, Any]:
        doc = sign_intent(c.key, type_, c.chain, c.seq + 1, self.ledger.clock(), body)
        return doc

    def submit(self, c: Customer, type_: str, body: dict[str, Any]):
        result = self.ledger.submit_one(self.intent(c, type_, body))
        c.seq += 1
        return result

    def balance(self, c: Customer, asset: str) -> tuple[int, int]:
        b = self.ledger.state(c.chain).balances.get(asset)
        return (0, 0) if b is None else (b.balance, b.held)


def pin(a: NetBank, b: NetBank) -> None:
    for x, y in ((a, b), (b, a)):
        record = {"name": y.name, "key": y.key.public_key, "url": f"http://{y.name}",
                  "chain": y.ledger.bank_chain()}

        def work(w: Writer, record: dict[str, Any] = record) -> None:
            w.put_peer(record)

        x.ledger.store.write(work)


class Net:
    """Delivers outbox messages between in-process banks; a bank that is down gets none."""

    def __init__(self, *banks: NetBank) -> None:
        self.banks = {b.name: b for b in banks}
        self.sent: list[dict[str, Any]] = []  # every request delivered, as sent
        self.delivered: list[tuple[str, bytes]] = []  # (request id, the answer's bytes)

    def deliver(self, sender: NetBank, message_id: str) -> str | None:
        with sender.ledger.store.read() as r:
            item = r.record("outbox", message_id)
        if item is None:
            return None
        peer = self.banks[item["peer"]]
        if not peer.up:
            sender.interbank.delivery_failed(message_id, "down")
            return None
        self.sent.append(item["message"])
        try:
            answer = peer.interbank.receive(item["message"], sender.key.public_key)
        except TChainError as e:
            sender.interbank.delivery_failed(message_id, e.message)
            return None
        if peer.loses_replies:
            sender.interbank.delivery_failed(message_id, "the reply was lost")
            return None
        self.delivered.append((message_id, answer))
        return sender.interbank.apply_answer(message_id, parse(answer))

    def run(self, rounds: int = 10) -> None:
        """Tick and deliver every due message until nothing moves (up to ``rounds``)."""
        for _ in range(rounds):
            moved = False
            for bank in self.banks.values():
                if not bank.up:
                    continue
                bank.interbank.tick()
                with bank.ledger.store.read() as r:
                    due = [mid for mid, _ in r.records("outbox")]
                for mid in due:
                    moved |= self.deliver(bank, mid) is not None
            if not moved:
                return


def two_banks(path: Path, keys: dict[str, SigningKey] | None = None
              ) -> tuple[Clock, NetBank, NetBank, Net]:
    """bank1.example and bank2.example, pinned to each other, on one clock, and the net
    between them (their ``keys`` by name, fixed for golden vectors)."""
    clock = Clock()
    b1, b2 = (NetBank(path / folder, name, clock, key=(keys or {}).get(name))
              for folder, name in (("b1", "bank1.example"), ("b2", "bank2.example")))
    pin(b1, b2)
    return clock, b1, b2, Net(b1, b2)


def all_sound(*banks: NetBank, chains_verify: bool = False) -> None:
    """Money is neither made nor lost: each asset sums to zero over every chain of every bank,
    each bank's audit is clean and no hold is left open; with ``chains_verify``, every chain
    also verifies offline (tchain.verify)."""
    assert all(total == 0 for total in totals(*banks).values()), totals(*banks)
    for bank in banks:
        report = audit(bank.ledger)
        assert report.ok, report.problems
        with bank.ledger.store.read() as r:
            assert r.open_holds() == []
            for chain in r.chain_ids(None, 10**6) if chains_verify else ():
                entries = [SignedEntry.from_bytes(e) for e in r.entries(chain, 0, 10**6)]
                verify_chain(entries, bank.key.public_key, bank.name, chain)


def totals(*banks: NetBank) -> dict[str, int]:
    """Each asset's balance summed over every chain of every bank."""
    out: dict[str, int] = defaultdict(int)
    for bank in banks:
        with bank.ledger.store.read() as r:
            for chain in r.chain_ids(None, 10**6):
                for asset, b in r.state(chain).balances.items():
                    out[asset] += b.balance
    return {a: t for a, t in out.items()}


def shut(banks: Any, folder: Path) -> None:
    """Close each bank's store and remove the folder they were kept in."""
    for bank in banks:
        bank.ledger.store.close()
    shutil.rmtree(folder, ignore_errors=True)
