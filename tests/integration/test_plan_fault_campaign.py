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
from tests.planrounds import Account, Proposed, dvp, plan_threads, plans_once_quiet, run_plan
from tests.quietbanks import assert_sound, faults, proxied_banks
from tests.realbanks import eventually, funded
from tests.realwallets import B1, B2, B3

ROUNDS = scale(2, 12)


def test_plans_under_peer_faults_end_the_same_way_at_every_bank(tmp_path):
    with proxied_banks(tmp_path, {B1: "USD", B2: "BOND", B3: "GBP"}, settle_deadline=3) as (
            banks, proxies):
        accounts = [Account(bank, funded(bank, "trader"), f"{bank.name}:{bank.config.assets[0]}")
                    for bank in banks]
        rng = random.Random(5)
        proposed = Proposed()
        ended: dict[str, int] = {}
        entries = 0
        for number in range(ROUNDS):
            with faults(proxies, rng, cut=number % 2 == 1):
                threads = plan_threads(accounts, rng, proposed)
                time.sleep(rng.uniform(1, 4))  # then healed, while the customers still consent
            for t in threads:
                t.join(timeout=120)
                assert not t.is_alive()
            ended = dict(plans_once_quiet(banks, proposed))
            entries += assert_sound(*banks)
        injected = sum(p.injected for p in proxies)
        assert injected > 0 and ended.get("completed", 0) > 0
        report("plans under peer faults", rounds=ROUNDS, faults_injected=injected,
               plans=sum(ended.values()), completed=ended.get("completed", 0),
               compensated=ended.get("compensated", 0), failed=ended.get("failed", 0),
               entries_verified=entries, proofs=0)


def test_a_plan_transfer_cut_longer_than_the_settle_deadline_still_completes(tmp_path):
    """Found by the campaign above: a plan's transfer took the bank's settle deadline (here 2
    s) as its message's deadline, so a cut of a few seconds made the payee bank refuse it as
    expired when it came, and a DvP between honest banks ended ``failed``, its log blaming the
    payer bank, though the transfer was not due until long after. Its deadline is now when the
    instruction is due (§14)."""
    with proxied_banks(tmp_path, {B1: "USD", B2: "BOND", B3: "GBP"}, settle_deadline=2) as (
            banks, (_, into_b2, _)):
        accounts = [Account(bank, funded(bank, "trader"), f"{bank.name}:{bank.config.assets[0]}")
                    for bank in banks]
        into_b2.only = b'"type":"transfer"'  # every other message still gets through
        into_b2.set(drop=1.0)
        proposed = Proposed()
        run = threading.Thread(target=run_plan, args=(
            dvp(accounts[0], accounts[1], banks[2], 60_000), accounts[0], accounts[:2],
            proposed))
        run.start()
        eventually(lambda: into_b2.counts["drop"] > 0, timeout=30)
        time.sleep(4)  # past the settle deadline, far from the plan's
        into_b2.heal()
        run.join(timeout=60)
        assert plans_once_quiet(banks, proposed) == {"completed": 1}
        assert_sound(*banks)
