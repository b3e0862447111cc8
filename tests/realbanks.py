"""Helpers for tests against real validators on loopback (``cli.local.LocalBank``): customers
that register and pay over HTTP, reads of a bank's LMDB store from the test process, and the
checks every fault campaign ends with (chains verify, no height twice, value conserved)."""

from __future__ import annotations

import os
import signal
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from cli.local import LocalBank
from tchain.auth import authorization_header
from tchain.clock import now_ms
from tchain.encoding import canonical
from tchain.intents import register_request, sign_intent
from tchain.keys import SigningKey
from tchain.model import SignedEntry
from tchain.verify import verify_chain
from tests.fault_proxy import FaultProxy
from tests.helpers import Customer
from validator.operator import deposit
from validator.peers import add_peer
from validator.store import Store


def store_of(bank: LocalBank) -> Store:
    return Store(bank.config.ledger_path)


def read(bank: LocalBank, fn: Callable[[Any], Any]) -> Any:
    """``fn(reader)`` over one snapshot of the bank's store, opened and closed here."""
    store = store_of(bank)
    try:
        with store.read() as r:
            return fn(r)
    finally:
        store.close()


def totals(*banks: LocalBank) -> dict[str, int]:
    """Each asset's balance summed over every chain of every bank."""
    out: dict[str, int] = defaultdict(int)
    for bank in banks:
        def add(r: Any) -> None:
            for chain in r.chain_ids(None, 10**6):
                for asset, b in r.state(chain).balances.items():
                    out[asset] += b.balance
        read(bank, add)
    return dict(out)


def balance(bank: LocalBank, c: Customer, asset: str) -> tuple[int, int]:
    state = read(bank, lambda r: r.state(c.chain))
    b = state.balances.get(asset)
    return (0, 0) if b is None else (b.balance, b.held)


def eventually(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    """Poll ``check`` until it returns a truthy value (or None) without failing an assert."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        else:
            if result is None or result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"still {result!r} after {timeout} s")
        time.sleep(0.1)


def register(bank: LocalBank, name: str, key: SigningKey | None = None) -> Customer:
    """A customer registered at ``bank`` over HTTP (with ``key``, or a new one)."""
    c = Customer(name) if key is None else Customer(name, key)
    r = requests.post(bank.url + "/v1/chains", timeout=10, data=canonical(register_request(
        c.key, name, now_ms(), bank=bank.name, kyc_record={"legal_name": name})))
    assert r.status_code == 201, r.text
    c.chain = SignedEntry.from_dict(r.json()).id
    return c


def funded(bank: LocalBank, name: str, amount: str = "100000") -> Customer:
    """A customer registered at ``bank`` with ``amount`` of the bank's first asset deposited."""
    c = register(bank, name)
    deposit(bank.config, name, amount, bank.config.assets[0])
    return c


def submit(bank: LocalBank, c: Customer, type_: str, body: dict[str, Any],
           timeout: float = 30) -> requests.Response:
    doc = sign_intent(c.key, type_, c.chain, c.seq + 1, now_ms(), body)
    r = requests.post(bank.url + "/v1/intents", data=canonical(doc), timeout=timeout)
    if r.status_code in (201, 202):
        c.seq += 1
    return r


def pay(bank: LocalBank, payer: Customer, payee: Customer, to_bank: str, amount: int,
        asset: str) -> requests.Response:
    return submit(bank, payer, "payment", {"to": payee.chain, "to_validator": to_bank,
                                           "asset": asset, "amount": str(amount)})


def resync(bank: LocalBank, c: Customer) -> None:
    """After a crash or a cut connection a client does not know whether its last intent was
    applied: it asks its bank for its chain's seq, as the wallet does."""
    r = signed_get(bank, c.key, f"/v1/chains/{c.chain}")
    assert r.status_code == 200, r.text
    c.seq = r.json()["seq"]


def kill_9(bank: LocalBank) -> None:
    """SIGKILL the bank's whole process group (master, workers, outbox sender) at once."""
    assert bank.process is not None
    os.killpg(bank.process.pid, signal.SIGKILL)
    bank.process.wait(timeout=10)
    bank.process = None


def signed_get(bank: LocalBank, key: SigningKey, path: str, query: str = "",
               timeout: float = 10) -> requests.Response:
    """A read signed by ``key`` (PROTOCOL.md §7)."""
    url = bank.url + path + (f"?{query}" if query else "")
    return requests.get(url, timeout=timeout, headers={
        "Authorization": authorization_header(key, "GET", path, query, b"", now_ms(),
                                              bank=bank.name)})


def post_message(to: LocalBank, key: SigningKey, doc: dict[str, Any]) -> requests.Response:
    """A peer message posted as the bank holding ``key`` would."""
    body = canonical(doc)
    path = "/v1/peer/messages"
    return requests.post(to.url + path, data=body, timeout=10, headers={
        "Authorization": authorization_header(key, "POST", path, "", body, now_ms(),
                                              bank=to.name)})


def assert_chain_verifies(bank: LocalBank, c: Customer) -> None:
    entries = read(bank, lambda r: r.entries(c.chain, 0, 10**6))
    verify_chain(entries, bank.config.signing_key().public_key, bank.name, c.chain)


def assert_every_chain_sound(bank: LocalBank) -> int:
    """Every chain at the bank verifies (PROTOCOL.md §5) and holds exactly one entry at each
    height 0..its state's height. Returns the number of entries checked."""
    key = bank.config.signing_key().public_key

    def check(r: Any) -> int:
        count = 0
        for chain in r.chain_ids(None, 10**6):
            raw = r.entries(chain, 0, 10**7)
            state = r.state(chain)
            heights = [SignedEntry.from_bytes(e).height for e in raw]
            assert heights == list(range(state.height + 1)), f"chain {chain} heights {heights}"
            verified = verify_chain(raw, key, bank.name, chain)
            assert verified.head == state.head and verified.balances == state.balances
            count += len(raw)
        return count

    return int(read(bank, check))


def snapshot_from(r: Any) -> dict[str, Any]:
    return {c: (r.state(c).to_dict(), tuple(r.entries(c, 0, 10**6)))
            for c in r.chain_ids(None, 10**6)}


def pay_across_held(b1: LocalBank, b2: LocalBank, proxy: FaultProxy
                    ) -> tuple[Customer, Customer, dict[str, Any]]:
    """Pin ``b1`` and ``b2`` (``b2`` behind ``proxy``), open alice at ``b1`` with 1000 of its USD
    and bob at ``b2``, and have the proxy hold every request to ``b2`` open: returns alice, bob
    and alice's signed payment of 300 to bob, not sent yet."""
    add_peer(b1.config, proxy.url)
    add_peer(b2.config, b1.url)
    alice, bob = register(b1, "alice"), register(b2, "bob")
    deposit(b1.config, "alice", "1000", "USD")
    proxy.set(blackhole=1.0)
    doc = sign_intent(alice.key, "payment", alice.chain, 1, now_ms(),
                      {"to": bob.chain, "to_validator": b2.name, "asset": f"{b1.name}:USD",
                       "amount": "300"})
    return alice, bob, doc


def worker_pids(bank: LocalBank) -> list[int]:
    """The workers of a running bank: the master's children but the outbox sender (whose pid
    ``GET /health`` gives)."""
    assert bank.process is not None
    pid = bank.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    sender = health(bank)["sender"]["pid"]
    return [int(c) for c in children if int(c) != sender]


def health(bank: LocalBank) -> dict[str, Any]:
    """The bank's ``GET /health`` report (200 or 503)."""
    r = requests.get(bank.url + "/health", timeout=10)
    assert r.status_code in (200, 503), r.text
    return dict(r.json())


def shadow_core(directory: Path) -> Path:
    """Make ``directory`` hold a folder named ``tchain`` with an empty ``__init__.py``: what a
    process importing from its working directory would take for the project's core."""
    (directory / "tchain").mkdir(parents=True, exist_ok=True)
    (directory / "tchain" / "__init__.py").write_text("")
    return directory
