"""Fault campaign 4: execution plans across three banks while the network between them fails.

Three banks, each behind its fault proxy (so each direction into a bank fails alone). Each
round sets random faults (and every other round cuts one bank off from the others' messages),
proposes a DvP (bank1's USD for bank2's BOND, bank3 watching) and a three-way swap, has every
customer consent at their own bank as soon as it knows the plan, and heals the network a few
seconds later. Once all three banks are quiet: every plan ended (completed, compensated, or
failed before anything moved) the same way at every bank that keeps it, no proof stands
between these honest banks, no hold is open, every chain verifies, every asset sums to zero
and every audit passes.
"""

from __future__ import annotations

import random
import threading
import time

from tests.campaign import report, scale
from tests.planrounds import (
    Account,
    Proposed,
    assert_plans_agree,
    dvp,
    plans_ended,
    run_plan,
    swap,
)
from tests.quietbanks import assert_sound, heal, proxied_banks, set_faults, wait_quiet
from tests.realbanks import eventually, register
from validator.operator import deposit

B1, B2, B3 = "bank1.example", "bank2.example", "bank3.example"
ROUNDS = scale(2, 12)
DEADLINE_MS = 25_000  # each plan's: long enough to outlast a round's faults, mostly


def test_plans_under_peer_faults_end_the_same_way_at_every_bank(tmp_path):
    with proxied_banks(tmp_path, {B1: "USD", B2: "BOND", B3: "GBP"}, settle_deadline=3) as (
            banks, proxies):
        accounts = []
        for bank, unit in zip(banks, ("USD", "BOND", "GBP"), strict=True):
            c = register(bank, f"trader{bank.name[4]}")
            deposit(bank.config, c.name, "100000", unit)
            accounts.append(Account(bank, c, f"{bank.name}:{unit}"))
        a1, a2, _ = accounts
        rng = random.Random(5)
        proposed = Proposed()
        ended: dict[str, int] = {}
        entries = 0
        for number in range(ROUNDS):
            set_faults(proxies, rng, cut=number % 2 == 1)
            work = [(dvp(a1, a2, banks[2], DEADLINE_MS), a1, [a1, a2]),
                    (swap(accounts, DEADLINE_MS), rng.choice(accounts), accounts)]
            threads = [threading.Thread(target=run_plan, args=(*w, proposed)) for w in work]
            for t in threads:
                t.start()
            time.sleep(rng.uniform(2, 8))
            heal(proxies)
            for t in threads:
                t.join(timeout=120)
                assert not t.is_alive()
            eventually(lambda: plans_ended(banks), timeout=90)
            wait_quiet(*banks)
            ended = dict(assert_plans_agree(banks, proposed))
            entries += assert_sound(*banks)
        injected = sum(p.injected for p in proxies)
        assert injected > 0 and ended.get("completed", 0) > 0
        report("plans under peer faults", rounds=ROUNDS, faults_injected=injected,
               plans=sum(ended.values()), completed=ended.get("completed", 0),
               compensated=ended.get("compensated", 0), failed=ended.get("failed", 0),
               entries_verified=entries, proofs=0)
