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
from tests.lockrounds import Pair, Told, lock_round, locks_once_quiet
from tests.quietbanks import assert_sound, faults, proxied_banks
from tests.realbanks import funded, register
from tests.realwallets import B1, B2, EUR, USD

ROUNDS = scale(1, 12)
PAIRS = 3  # locks each way per round


def test_locks_under_peer_faults_are_claimed_or_refunded_never_both(tmp_path):
    with proxied_banks(tmp_path, {B1: "USD", B2: "EUR"}, settle_deadline=3) as (
            (b1, b2), proxies):
        pairs = []
        for payer_bank, payee_bank, asset in ((b1, b2, USD), (b2, b1, EUR)):
            pairs += [Pair(payer_bank, funded(payer_bank, f"locker{i}"), payee_bank,
                           register(payee_bank, f"claimer{i}"), asset) for i in range(PAIRS)]
        told, rng, entries = Told(), random.Random(11), 0
        outcome: dict[str, int] = {}
        for number in range(ROUNDS):
            with faults(proxies, rng, cut=number % 2 == 1):
                lock_round(pairs, rng, told)
            outcome = locks_once_quiet([b1, b2], told)
            entries += assert_sound(b1, b2)
        injected = sum(p.injected for p in proxies)
        assert injected > 0 and outcome["claimed"] > 0 and outcome["refunded"] > 0
        report("locks under peer faults", rounds=ROUNDS, faults_injected=injected,
               locks=len(told.locks), locks_claimed=outcome["claimed"],
               locks_refunded=outcome["refunded"], claims_answered=len(told.claimed),
               entries_verified=entries, credited_twice=0)
