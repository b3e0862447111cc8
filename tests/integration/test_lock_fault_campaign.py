"""Fault campaign 3: hash-time locks across two banks while the network between them fails.

The two banks of the peer campaign, each behind its fault proxy. Each round sets random faults
(dropped requests, delays, replies lost after the peer committed, connections held open, and
every other round one direction cut), then makes locks both ways at once: some claimed as soon
as the payee's bank has them, some claimed racing their expiry, some left to expire. Then the
network heals. Once both banks are quiet and every lock is decided: a lock settled at the
payer's bank is claimed once at the payee's, a lock released there was never credited, every
claim a client was answered settled its lock, no hold is open, no proof stands between these
honest banks, every chain verifies, every asset sums to zero and both audits pass.
"""

from __future__ import annotations

import random

from tests.campaign import report, scale
from tests.lockrounds import Pair, Told, assert_locks_agree, lock_round, locks_decided
from tests.quietbanks import assert_sound, heal, proxied_banks, set_faults, wait_quiet
from tests.realbanks import eventually, register
from validator.operator import deposit

B1, B2 = "bank1.example", "bank2.example"
USD, EUR = f"{B1}:USD", f"{B2}:EUR"
ROUNDS = scale(2, 12)
PAIRS = 3  # locks each way per round


def test_locks_under_peer_faults_are_claimed_or_refunded_never_both(tmp_path):
    with proxied_banks(tmp_path, {B1: "USD", B2: "EUR"}, settle_deadline=3) as (
            (b1, b2), proxies):
        pairs = []
        for payer_bank, payee_bank, asset, unit in ((b1, b2, USD, "USD"), (b2, b1, EUR, "EUR")):
            for i in range(PAIRS):
                payer = register(payer_bank, f"locker{i}")
                deposit(payer_bank.config, payer.name, "100000", unit)
                pairs.append(Pair(payer_bank, payer, payee_bank,
                                  register(payee_bank, f"claimer{i}"), asset))
        rng = random.Random(11)
        told = Told()
        outcome: dict[str, int] = {}
        entries = 0
        for number in range(ROUNDS):
            set_faults(proxies, rng, cut=number % 2 == 1)
            lock_round(pairs, rng, told)
            heal(proxies)
            wait_quiet(b1, b2)
            eventually(lambda: locks_decided([b1, b2]), timeout=30)
            outcome = assert_locks_agree([b1, b2], told)
            entries += assert_sound(b1, b2)
        injected = sum(p.injected for p in proxies)
        assert injected > 0 and outcome["claimed"] > 0 and outcome["refunded"] > 0
        report("locks under peer faults", rounds=ROUNDS, faults_injected=injected,
               locks=len(told.locks), locks_claimed=outcome["claimed"],
               locks_refunded=outcome["refunded"], claims_answered=len(told.claimed),
               entries_verified=entries, credited_twice=0)
