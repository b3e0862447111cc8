"""Fault campaign 1: the validator killed with SIGKILL under load, many times.

Concurrent customers pay each other over HTTP; at a random moment the whole process group
(master, workers, outbox sender) is killed with SIGKILL, the bank restarted, and:
every entry a client received signed is present at its height with the same bytes, every chain
verifies, no height holds two entries, every asset sums to zero and the audit passes.
"""

from __future__ import annotations

import random
import threading
import time

import requests

from cli.local import LocalBank
from tchain.model import SignedEntry
from tests.campaign import report, scale
from tests.helpers import Customer
from tests.realbanks import (
    assert_every_chain_sound,
    kill_9,
    pay,
    read,
    register,
    resync,
    totals,
)
from validator.operator import deposit, run_audit

BANK = "crash.example"
USD = f"{BANK}:USD"
CYCLES = scale(3, 40)
PAYERS = 4


class Load:
    """Customers paying each other until stopped; every signed answer is kept."""

    def __init__(self, bank: LocalBank, customers: list[Customer]) -> None:
        self.bank, self.customers = bank, customers
        self.acknowledged: dict[tuple[str, int], bytes] = {}
        self.unknown_outcomes = 0
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def resync(self) -> None:
        for c in self.customers:
            resync(self.bank, c)

    def run(self, payer: Customer, rng: random.Random) -> None:
        while not self.stop.is_set():
            payee = rng.choice([c for c in self.customers if c is not payer])
            try:
                r = pay(self.bank, payer, payee, BANK, rng.randint(1, 50), USD)
            except requests.RequestException:
                with self.lock:
                    self.unknown_outcomes += 1
                self.stop.wait(0.05)
                continue
            assert r.status_code == 201, r.text  # a cut request raises; no other answer is right
            with self.lock:
                for doc in r.json()["entries"]:
                    entry = SignedEntry.from_dict(doc)
                    self.acknowledged[(entry.chain, entry.height)] = entry.to_bytes()

    def cycle(self, seed: int) -> None:
        self.stop.clear()
        rng = random.Random(seed)
        threads = [threading.Thread(target=self.run, args=(c, random.Random(seed * 10 + i)))
                   for i, c in enumerate(self.customers[:PAYERS])]
        for t in threads:
            t.start()
        time.sleep(rng.uniform(0.3, 1.2))
        kill_9(self.bank)
        self.stop.set()
        for t in threads:
            t.join(timeout=30)
            assert not t.is_alive()


def test_sigkill_under_load_loses_no_acknowledged_entry(tmp_path):
    # No rate limit: each payer here pays as fast as the bank answers, on purpose.
    bank = LocalBank(tmp_path / "bank", BANK, workers=2, extra_args=("--rate-limit", "0"))
    with bank:
        customers = [register(bank, f"c{i}") for i in range(PAYERS + 2)]
        for c in customers:
            deposit(bank.config, c.name, "1000000", "USD")
        load = Load(bank, customers)
        checked = 0
        for cycle in range(CYCLES):
            load.cycle(seed=cycle)
            bank.start()
            load.resync()
            stored = read(bank, lambda r: {key: r.entry(*key) for key in load.acknowledged})
            lost = [key for key, raw in load.acknowledged.items() if stored[key] != raw]
            assert not lost, f"cycle {cycle}: acknowledged entries missing or changed: {lost}"
            checked += assert_every_chain_sound(bank)
            assert all(t == 0 for t in totals(bank).values()), totals(bank)
            audit = run_audit(bank.config)
            assert audit.ok, audit.problems
        assert len(load.acknowledged) > CYCLES  # the load did run between the kills
        report("kill -9 under load", cycles=CYCLES, acknowledged_entries=len(load.acknowledged),
               entries_verified=checked, requests_cut=load.unknown_outcomes, lost=0)
