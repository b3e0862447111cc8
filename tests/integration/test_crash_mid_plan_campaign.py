"""Fault campaign 5: a bank killed with SIGKILL while plans and locks run across three banks.

Each cycle makes hash-time locks around the three banks (some claimed soon, some racing their
expiry, some left to expire) and proposes a DvP and a three-way swap whose customers consent
as soon as their banks know them; at a random moment the whole process group of one random
bank (master, workers, outbox sender) is killed with SIGKILL, and the bank restarted a moment
later. Once all banks are quiet: every entry a client was answered with is present with the
same bytes, every plan ended the same way at every bank that keeps it, the banks agree on every
lock, no proof stands between these honest banks, no hold is open, every chain verifies, every
asset sums to zero and every audit passes.
"""

from __future__ import annotations

import random
import threading
import time

from tests.campaign import report, scale
from tests.lockrounds import Pair, Told, assert_locks_agree, lock_round, locks_decided
from tests.planrounds import (
    Account,
    Proposed,
    assert_plans_agree,
    dvp,
    plans_ended,
    run_plan,
    swap,
)
from tests.quietbanks import assert_sound, proxied_banks, wait_quiet
from tests.realbanks import eventually, kill_9, register, resync
from validator.operator import deposit

B1, B2, B3 = "bank1.example", "bank2.example", "bank3.example"
UNITS = {B1: "USD", B2: "BOND", B3: "GBP"}
CYCLES = scale(2, 12)
DEADLINE_MS = 25_000


def test_a_bank_killed_mid_plan_and_mid_lock_loses_and_doubles_nothing(tmp_path):
    with proxied_banks(tmp_path, UNITS, settle_deadline=3) as (banks, _):
        accounts, pairs = [], []
        for i, bank in enumerate(banks):
            unit = UNITS[bank.name]
            trader = register(bank, "trader")
            deposit(bank.config, trader.name, "100000", unit)
            accounts.append(Account(bank, trader, f"{bank.name}:{unit}"))
            locker = register(bank, "locker")
            deposit(bank.config, locker.name, "100000", unit)
            payee_bank = banks[(i + 1) % len(banks)]
            pairs.append(Pair(bank, locker, payee_bank, register(payee_bank, f"claimer{i}"),
                              f"{bank.name}:{unit}"))
        a1, a2, a3 = accounts
        rng = random.Random(3)
        told, proposed = Told(), Proposed()
        ended: dict[str, int] = {}
        locks: dict[str, int] = {}
        entries = 0
        for _ in range(CYCLES):
            for pair in pairs:
                resync(pair.payer_bank, pair.payer)
                resync(pair.payee_bank, pair.payee)
            threads = [threading.Thread(target=lock_round, args=(pairs, rng, told)),
                       threading.Thread(target=run_plan, args=(
                           dvp(a1, a2, banks[2], DEADLINE_MS), a1, [a1, a2], proposed)),
                       threading.Thread(target=run_plan, args=(
                           swap(accounts, DEADLINE_MS), a3, accounts, proposed))]
            for t in threads:
                t.start()
            time.sleep(rng.uniform(0.3, 6))
            victim = rng.choice(banks)
            kill_9(victim)
            time.sleep(rng.uniform(0, 2))
            victim.start()
            for t in threads:
                t.join(timeout=150)
                assert not t.is_alive()
            eventually(lambda: plans_ended(banks), timeout=90)
            wait_quiet(*banks)
            eventually(lambda: locks_decided(banks), timeout=30)
            assert not told.missing(banks), told.missing(banks)
            ended = dict(assert_plans_agree(banks, proposed))
            locks = assert_locks_agree(banks, told)
            entries += assert_sound(*banks)
        report("kill -9 mid-plan and mid-lock", cycles=CYCLES, plans=sum(ended.values()),
               completed=ended.get("completed", 0), compensated=ended.get("compensated", 0),
               failed=ended.get("failed", 0), locks_claimed=locks["claimed"],
               locks_refunded=locks["refunded"], acknowledged_entries=len(told.entries),
               requests_cut=told.unknown + proposed.unknown, entries_verified=entries, lost=0)
