"""`tchain bench`: every speed figure of the validator, measured in one run on loopback.

Each figure is also given as a ratio to a bound measured in the same process, so a slow or
busy machine shows up in both and the ratio stays comparable: payments against one Ed25519
verify and two signs on one core (pure PyNaCl, its bindings, as the engine calls them), chain
verification against the bare verify rate. Everything runs in a temporary directory; every
server started is stopped before the command returns.
"""

from __future__ import annotations

import gc
import json
import shutil
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import click
import nacl.bindings
import requests

from cli.loadgen import LoadResult, run_load
from cli.local import LocalBank
from cli.parallel_verify import default_workers, verify_all
from tchain.clock import now_ms
from tchain.encoding import canonical, parse
from tchain.flow_states import Flow, FlowEvent, FlowType, OutboxItem
from tchain.intents import register_request, sign_intent
from tchain.keys import SigningKey
from tchain.model import SignedEntry
from tchain.rules import BankIdentity
from tchain.state import Balance, ChainState, Hold, Holds
from tchain.verify import ChainVerifier
from validator.flows import put_record
from validator.interbank import Interbank
from validator.ledger import Ledger
from validator.operator import deposit
from validator.peers import add_peer
from validator.store import Store

__all__ = ["KEYS", "Sizes", "run_bench"]

# The keys of `tchain bench --json`, in order (numbers per second unless named _ms).
KEYS = ("crypto_bound_payments_per_s", "engine_payments_per_s", "http_single_payments_per_s",
        "http_single_p50_ms", "http_single_p99_ms", "http_batch_payments_per_s",
        "cross_bank_payments_per_s", "verify_entries_per_s", "verify_bound_entries_per_s")
BANK1, BANK2 = "bank1.example", "bank2.example"
PAGE = 1000
CROSS_PAYERS = 8  # customers of bank 1 paying customers of bank 2 at once
CROSS_BATCH = 100  # intents per request
FILLER = canonical({"filler": True})  # bytes standing in for entries in the scale table (_scale)


@dataclass(frozen=True)
class Sizes:
    """How much work each measurement does (``--quick`` shrinks it for the test suite)."""

    crypto_seconds: float
    engine_payments: int
    http_customers: int  # funded at the HTTP bank; each sends its batches at once
    http_single_clients: int  # of them, the ones sending single intents at once
    http_per_client: int
    batch_size: int
    batch_per_customer: int
    cross_payments: int
    long_chain: int
    many_chains: int
    open_holds: int  # on one chain, for the scale table

    @classmethod
    def full(cls) -> Sizes:
        return cls(1.0, 20_000, 48, 12, 400, 200, 400, 4_000, 1_000_000, 100_000, 10_000)

    @classmethod
    def quick(cls) -> Sizes:
        return cls(0.1, 600, 8, 4, 10, 50, 50, 100, 10_000, 1_000, 100)


class Customer:
    """A bench customer: a key, its chain and the next seq, signing intents ahead of time."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.key = SigningKey.generate()
        self.chain = ""
        self.seq = 0

    def pay(self, to: Customer, bank: str, now: int, amount: str = "1") -> dict[str, Any]:
        self.seq += 1
        return sign_intent(self.key, "payment", self.chain, self.seq, now,
                           {"to": to.chain, "to_validator": bank,
                            "asset": f"{BANK1}:USD", "amount": amount})


def run_bench(sizes: Sizes, progress: Callable[[str], None], *, keep: bool = False
              ) -> tuple[dict[str, float], list[tuple[str, str, str]]]:
    """Run every measurement; return the figures (KEYS) and the scale table rows. ``keep``
    leaves the temporary directory (stores and the servers' logs) in place."""
    figures: dict[str, float] = {}
    base = Path(tempfile.mkdtemp(prefix="tchain-bench-"))
    progress(f"working in {base}")
    try:
        progress("crypto bounds")
        figures["crypto_bound_payments_per_s"] = _crypto_bound(sizes.crypto_seconds)
        figures["verify_bound_entries_per_s"] = _verify_bound(sizes.crypto_seconds)
        progress("engine (in-process, durable)")
        ledger, (a, b) = _ledger(base / "engine", 2)
        figures["engine_payments_per_s"] = _engine(ledger, a, b, sizes.engine_payments)
        progress("offline verification of the engine's chain")
        figures["verify_entries_per_s"], memory = _verify(ledger, a)
        ledger.store.close()
        progress("HTTP, one intent per request (serve --workers 2)")
        figures.update(_http(base / "http", sizes))
        progress("cross-bank (two validators)")
        figures["cross_bank_payments_per_s"] = _cross(base / "cross", sizes)
        progress("scale with work")
        rows = _scale(base / "scale", sizes) + memory
        return figures, rows
    finally:
        if not keep:
            shutil.rmtree(base, ignore_errors=True)


# --- bounds ------------------------------------------------------------------------------------

def _crypto_bound(seconds: float) -> float:
    """One verify and two signs per payment, on one core, with PyNaCl's bindings."""
    public, secret = nacl.bindings.crypto_sign_seed_keypair(b"\x01" * 32)
    digest = b"\x02" * 32
    signed = nacl.bindings.crypto_sign(digest, secret)
    return _rate(seconds, lambda: (nacl.bindings.crypto_sign_open(signed, public),
                                   nacl.bindings.crypto_sign(digest, secret),
                                   nacl.bindings.crypto_sign(digest, secret)))


def _verify_bound(seconds: float) -> float:
    public, secret = nacl.bindings.crypto_sign_seed_keypair(b"\x03" * 32)
    signed = nacl.bindings.crypto_sign(b"\x04" * 32, secret)
    return _rate(seconds, lambda: nacl.bindings.crypto_sign_open(signed, public))


def _rate(seconds: float, step: Callable[[], Any]) -> float:
    done, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(100):
            step()
        done += 100
    return done / elapsed


# --- in-process engine -------------------------------------------------------------------------

def _ledger(path: Path, customers: int) -> tuple[Ledger, list[Customer]]:
    key = SigningKey.generate()
    ledger = Ledger(Store(path), BankIdentity(key, BANK1))
    ledger.register(register_request(key, BANK1, now_ms(), bank=BANK1,
                                     kyc_record={"legal_name": BANK1}))
    people = []
    for i in range(customers):
        c = Customer(f"c{i}")
        c.chain = ledger.register(register_request(c.key, c.name, now_ms(), bank=BANK1,
                                                   kyc_record={"legal_name": c.name})).id
        ledger.deposit(f"{c.name}*{BANK1}", f"{BANK1}:USD", 10**15)
        people.append(c)
    return ledger, people


def _engine(ledger: Ledger, a: Customer, b: Customer, n: int, batch: int = 250) -> float:
    """Two customers paying each other: every payment appends to both chains."""
    now = now_ms()
    docs = [a.pay(b, BANK1, now) if i % 2 == 0 else b.pay(a, BANK1, now) for i in range(n)]
    gc.collect()
    start = time.perf_counter()
    for i in range(0, n, batch):
        for result in ledger.submit_many(docs[i:i + batch]):
            if result.error is not None:
                raise RuntimeError(f"bench payment refused: {result.error.message}")
    return n / (time.perf_counter() - start)


def _pages(store: Store, chain: str, upto: int | None = None) -> Iterator[bytes]:
    """A chain's entries from the store, a page at a time (as a wallet syncs them)."""
    start = 0
    while upto is None or start < upto:
        with store.read() as r:
            page = r.entries(chain, start, PAGE if upto is None else min(PAGE, upto - start))
        if not page:
            return
        yield from page
        start += len(page)


def _verify(ledger: Ledger, customer: Customer) -> tuple[float, list[tuple[str, str, str]]]:
    """Verify a long chain offline, streaming, as ``tchain verify`` does (signatures checked
    in a process per core); and the peak memory of this process at two lengths."""
    key, name = ledger.bank.public_key, ledger.bank.name
    with ledger.store.read() as r:
        state = r.state(customer.chain)
    assert state is not None
    length = state.height + 1
    workers = default_workers(length)
    start = time.perf_counter()
    verify_all(ChainVerifier(key, name, customer.chain), _pages(ledger.store, customer.chain),
               workers=workers, keep=False)
    rate = length / (time.perf_counter() - start)
    rows = []
    for upto in (min(length, 2 * PAGE), length):
        tracemalloc.start()
        verify_all(ChainVerifier(key, name, customer.chain),
                   _pages(ledger.store, customer.chain, upto), workers=workers, keep=False)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        rows.append(("streaming verify, peak memory", f"chain of {upto:,} entries",
                     f"{peak / 2**20:.1f} MiB"))
    return rate, rows


# --- HTTP --------------------------------------------------------------------------------------

def _bank(path: Path, name: str, **kw: Any) -> LocalBank:
    return LocalBank(path, name, workers=2, extra_args=("--rate-limit", "0"), **kw)


def _register(bank: LocalBank, n: int, prefix: str, funded: bool) -> list[Customer]:
    people = []
    for i in range(n):
        c = Customer(f"{prefix}{i}")
        r = requests.post(bank.url + "/v1/chains", timeout=30, data=canonical(register_request(
            c.key, c.name, now_ms(), bank=bank.name, kyc_record={"legal_name": c.name})))
        r.raise_for_status()
        c.chain = SignedEntry.from_bytes(r.content).id
        if funded:
            deposit(bank.config, c.name, str(10**15), "USD")
        people.append(c)
    return people


def _pairs(people: list[Customer]) -> list[tuple[Customer, Customer]]:
    return [(p, people[(i + 1) % len(people)]) for i, p in enumerate(people)]


def _http(path: Path, sizes: Sizes) -> dict[str, float]:
    with _bank(path / "bank1", BANK1) as bank:
        people = _register(bank, sizes.http_customers, "h", funded=True)
        now = now_ms()
        # Clients each waiting for its answer. A worker decides the intents that arrive
        # together in one round (validator/coalesce.py), so more clients make larger rounds,
        # up to where the queue shows in p99: here 8 clients gave 1,300 a second (p99 10 ms),
        # 12 gave 1,400-1,700 (p99 12-15 ms), 16 gave 1,500-1,700 (p99 17-20 ms) and 24
        # gave 1,400-1,800 (p99 23-30 ms).
        single = [[canonical(payer.pay(payee, BANK1, now))
                   for _ in range(sizes.http_per_client)]
                  for payer, payee in _pairs(people)[:sizes.http_single_clients]]
        result = run_load(bank.port, "/v1/intents", single, processes=2)
        _expect(result, 201, sum(map(len, single)), "single intents")
        now = now_ms()
        batches = [[canonical({"intents": [payer.pay(payee, BANK1, now)
                                           for _ in range(sizes.batch_size)]})
                    for _ in range(sizes.batch_per_customer // sizes.batch_size or 1)]
                   for payer, payee in _pairs(people)]
        batch = run_load(bank.port, "/v1/intents/batch", batches, processes=2,
                         keep_bodies=True)
        accepted = _accepted_in_batches(batch, {201})
    return {"http_single_payments_per_s": result.requests / result.seconds,
            "http_single_p50_ms": result.percentile_ms(50),
            "http_single_p99_ms": result.percentile_ms(99),
            "http_batch_payments_per_s": accepted / batch.seconds}


def _expect(result: LoadResult, status: int, count: int, what: str) -> None:
    if result.statuses.get(status, 0) != count:
        raise RuntimeError(f"bench {what}: expected {count} answers {status}, got "
                           f"{result.statuses}")


def _accepted_in_batches(result: LoadResult, statuses: set[int]) -> int:
    _expect(result, 200, result.requests, "batches")
    results = [x for body in result.bodies for x in parse(body)["results"]]
    refused = [x for x in results if x["status"] not in statuses]
    if refused:
        raise RuntimeError(f"bench batch: {len(refused)} intents refused, the first: "
                           f"{refused[0]}")
    return len(results)


def _cross(path: Path, sizes: Sizes) -> float:
    """Payments from bank 1's customers to bank 2's, in batches; counted until every one is
    settled at bank 1 (bank 2 credited it and bank 1 applied the credit)."""
    with _bank(path / "bank1", BANK1) as b1, _bank(path / "bank2", BANK2) as b2:
        add_peer(b1.config, b2.url)
        add_peer(b2.config, b1.url)
        payers = _register(b1, CROSS_PAYERS, "x", funded=True)
        payees = _register(b2, CROSS_PAYERS, "y", funded=False)
        per = max(1, sizes.cross_payments // len(payers))
        now = now_ms()
        batch = min(CROSS_BATCH, per)
        conversations = [[canonical({"intents": [payer.pay(payee, BANK2, now)
                                                 for _ in range(batch)]})
                          for _ in range(per // batch)]
                         for payer, payee in zip(payers, payees, strict=True)]
        total = sum(len(c) for c in conversations) * batch
        start = time.monotonic()
        result = run_load(b1.port, "/v1/intents/batch", conversations, processes=2,
                          keep_bodies=True)
        _accepted_in_batches(result, {201, 202})  # 202: the peer's credit came after
        store = Store(b1.config.ledger_path)
        try:
            deadline = start + 120
            while time.monotonic() < deadline:
                with store.read() as r:
                    states = [r.state_with_holds(p.chain) for p in payers]
                    settled = all(s is not None and not s.holds for s in states)
                if settled:
                    break
                time.sleep(0.02)
            else:
                raise RuntimeError("bench cross-bank: payments still held after 120 s")
            elapsed = time.monotonic() - start
        finally:
            store.close()
    return total / elapsed


# --- scale ------------------------------------------------------------------------------------

def _scale(path: Path, sizes: Sizes) -> list[tuple[str, str, str]]:
    """The cost of an append and of a state lookup against the chain's length and the number
    of chains. The long chain's entries below its head, and the extra chains, are filler
    written straight to the store (making them real would take minutes): the append path
    reads only the chain's state and writes the next key, so it cannot tell them from real."""
    ledger, (a, b) = _ledger(path, 2)
    rows = []
    try:
        rows.append(_append_row(ledger, a, b, "chain of 10 entries, 3 chains"))
        _grow_chain(ledger, a, sizes.long_chain)
        rows.append(_append_row(ledger, a, b, f"chain of {sizes.long_chain:,} entries"))
        _add_chains(ledger, a, sizes.many_chains)
        rows.append(_append_row(ledger, a, b, f"{sizes.many_chains:,} more chains"))
        _open_holds(ledger, a, sizes.open_holds)
        rows.append(_append_row(ledger, a, b, f"and {sizes.open_holds:,} open holds on it"))
        interbank = Interbank(ledger)
        rows.append(_sender_row(interbank, "no cross-bank flow kept"))
        _add_flows(ledger, a, sizes.many_chains, settled=True)
        rows.append(_sender_row(interbank, f"{sizes.many_chains:,} settled flows kept"))
        _add_flows(ledger, a, sizes.many_chains, settled=False)
        rows.append(_sender_row(interbank, f"and {sizes.many_chains:,} waiting for a peer"))
    finally:
        ledger.store.close()
    return rows


def _append_row(ledger: Ledger, a: Customer, b: Customer, label: str,
                n: int = 400) -> tuple[str, str, str]:
    now = now_ms()
    docs = [a.pay(b, BANK1, now) if i % 2 == 0 else b.pay(a, BANK1, now) for i in range(n)]
    start = time.perf_counter()
    for i in range(0, n, 100):
        ledger.submit_many(docs[i:i + 100])
    append_us = (time.perf_counter() - start) / n * 1e6
    start = time.perf_counter()
    for _ in range(n):  # as GET /v1/chains/<id> reads it
        with ledger.store.read() as r:
            r.state(a.chain)
    lookup_us = (time.perf_counter() - start) / n * 1e6
    return ("payment (append) | balance and head lookup", label,
            f"{append_us:.0f} µs | {lookup_us:.1f} µs")


def _sender_row(interbank: Interbank, label: str, n: int = 200) -> tuple[str, str, str]:
    """The outbox sender's round (every 200 ms: the clock, then what is due to be sent) when
    nothing is due."""
    interbank.tick()
    start = time.perf_counter()
    for _ in range(n):
        if interbank.tick() or interbank.due():
            raise RuntimeError("bench: something fell due in the scale table's store")
    return ("outbox sender's round", label,
            f"{(time.perf_counter() - start) / n * 1e6:.0f} µs")


def _add_flows(ledger: Ledger, payer: Customer, count: int, *, settled: bool) -> None:
    """Records of cross-bank payments: settled ones, as a bank keeps them once done, or ones
    whose message waits an hour for its next try (their peer is down)."""
    later = now_ms() + 3_600_000
    for start in range(0, count, 20_000):

        def work(w: Any, start: int = start) -> None:
            for i in range(start, min(start + 20_000, count)):
                # a flow and its message, under one id here (they are in two databases)
                record_id = f"{i + (0 if settled else count):064x}"
                flow = Flow.start(FlowType.TRANSFER, chain=payer.chain, height=i, peer=BANK2,
                                  deadline=0, message=record_id)
                put_record(w, "flows", record_id,
                     flow.moved(FlowEvent.CREDITED) if settled else flow)
                if not settled:
                    put_record(w, "outbox", record_id, OutboxItem(
                        BANK2, {"message": {"type": "transfer"}}, 12, later, None, record_id,
                        f"cannot reach {BANK2}"))

        ledger.store.write(work)


def _grow_chain(ledger: Ledger, customer: Customer, length: int) -> None:
    """Put filler entries under the chain's head until it is ``length`` long."""
    state = ledger.state(customer.chain)
    top = length - 1
    for start in range(state.height + 1, top + 1, 100_000):

        def work(w: Any, start: int = start) -> None:
            for h in range(start, min(start + 100_000, top + 1)):
                w.put_entry(customer.chain, h, FILLER)

        ledger.store.write(work)
    # the next entry links to the real head, at the height after the filler
    ledger.store.write(lambda w: w.put_state(replace(state, height=top)))


def _open_holds(ledger: Ledger, customer: Customer, count: int) -> None:
    """Give the chain ``count`` open holds (cross-bank payments in flight), as filler: the
    store keeps them beside the state, and a payment that opens or closes none reads and
    writes none of them."""
    holds = {f"{i:064x}": Hold("payment", i, f"{BANK1}:USD", 1) for i in range(count)}

    def work(w: Any) -> None:
        state = w.state(customer.chain)
        usd = state.balances[f"{BANK1}:USD"]
        balances = {**state.balances, f"{BANK1}:USD": Balance(usd.balance, usd.held + count)}
        w.put_state(replace(state, balances=balances, holds=Holds(opened=holds)))

    ledger.store.write(work)


def _add_chains(ledger: Ledger, like: Customer, count: int) -> None:
    state = ledger.state(like.chain)
    for start in range(0, count, 20_000):

        def work(w: Any, start: int = start) -> None:
            for i in range(start, min(start + 20_000, count)):
                chain = f"{i:064x}"
                w.put_state(ChainState(chain, state.owner, f"f{i}", f"f{i}*{BANK1}", 0, chain,
                                       0, False, {}))
                w.put_entry(chain, 0, FILLER)

        ledger.store.write(work)


# --- the command -------------------------------------------------------------------------------

_RATIOS = {"engine_payments_per_s": ("crypto_bound_payments_per_s", 0.75),
           "http_single_payments_per_s": ("crypto_bound_payments_per_s", 0.3),
           "http_batch_payments_per_s": ("crypto_bound_payments_per_s", 0.6),
           "cross_bank_payments_per_s": ("crypto_bound_payments_per_s", 0.1),
           "verify_entries_per_s": ("verify_bound_entries_per_s", 0.8)}


@click.command()
@click.option("--quick", is_flag=True, help="A few seconds of each measurement (for tests).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object of the figures.")
@click.option("--keep", is_flag=True, help="Keep the temporary directory (stores, logs).")
def bench(quick: bool, as_json: bool, keep: bool) -> None:
    """Measure the validator on loopback: crypto bounds, the engine, HTTP single and batch,
    cross-bank, offline verification, and cost against chain length and chain count."""
    sizes = Sizes.quick() if quick else Sizes.full()
    started = time.monotonic()
    figures, rows = run_bench(sizes, lambda what: click.echo(f"bench: {what}...", err=True),
                              keep=keep)
    if as_json:
        click.echo(json.dumps({key: round(figures[key], 2) for key in KEYS}))
        return
    click.echo(f"{'figure':34} {'value':>12}  {'ratio to bound':>14}  goal")
    for key in KEYS:
        bound, goal = _RATIOS.get(key, (None, None))
        ratio = f"{figures[key] / figures[bound]:.2f}" if bound else ""
        click.echo(f"{key:34} {figures[key]:12.2f}  {ratio:>14}  {f'>= {goal}' if goal else ''}")
    click.echo("\ncost against size")
    wide = max(len(size) for _, size, _ in rows)
    for what, size, cost in rows:
        click.echo(f"  {what:46} {size:{wide}}  {cost}")
    click.echo(f"\n{'quick ' if quick else ''}bench took {time.monotonic() - started:.0f} s")
