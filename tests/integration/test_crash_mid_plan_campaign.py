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
from tests.lockrounds import Pair, Told, lock_round, locks_once_quiet
from tests.planrounds import Account, Proposed, plan_threads, plans_once_quiet
from tests.quietbanks import assert_sound, proxied_banks
from tests.realbanks import funded, kill_9, register, resync
from tests.realwallets import B1, B2, B3

UNITS = {B1: "USD", B2: "BOND", B3: "GBP"}
CYCLES = scale(1, 12)


def test_a_bank_killed_mid_plan_and_mid_lock_loses_and_doubles_nothing(tmp_path):
    with proxied_banks(tmp_path, UNITS, settle_deadline=3) as (banks, _):
        accounts, pairs = [], []
        for i, bank in enumerate(banks):
            asset = f"{bank.name}:{UNITS[bank.name]}"
            accounts.append(Account(bank, funded(bank, "trader"), asset))
            payee_bank = banks[(i + 1) % len(banks)]
            pairs.append(Pair(bank, funded(bank, "locker"), payee_bank,
                              register(payee_bank, f"claimer{i}"), asset))
        rng = random.Random(3)
        told, proposed = Told(), Proposed()
        ended: dict[str, int] = {}
        locks: dict[str, int] = {}
        entries = 0
        for _ in range(CYCLES):
            for pair in pairs:
                resync(pair.payer_bank, pair.payer)
                resync(pair.payee_bank, pair.payee)
            locking = threading.Thread(target=lock_round, args=(pairs, rng, told))
            locking.start()
            threads = [locking, *plan_threads(accounts, rng, proposed)]
            time.sleep(rng.uniform(0.3, 12))  # mid-plan, mid-claim or at a lock's expiry
            victim = rng.choice(banks)
            kill_9(victim)
            time.sleep(rng.uniform(0, 2))
            victim.start()
            for t in threads:
                t.join(timeout=150)
                assert not t.is_alive()
            ended = dict(plans_once_quiet(banks, proposed))
            locks = locks_once_quiet(banks, told)
            assert not told.missing(banks), told.missing(banks)
            entries += assert_sound(*banks)
        report("kill -9 mid-plan and mid-lock", cycles=CYCLES, plans=sum(ended.values()),
               completed=ended.get("completed", 0), compensated=ended.get("compensated", 0),
               failed=ended.get("failed", 0), locks_claimed=locks["claimed"],
               locks_refunded=locks["refunded"], acknowledged_entries=len(told.entries),
               requests_cut=told.unknown + proposed.unknown, entries_verified=entries, lost=0)
