"""Fault campaign 2: a peer bank failing mid-flow.

Two real validators talk to each other only through fault proxies on 127.0.0.1 (one in front of
each bank, so one direction can be cut alone). Each round sets random faults (dropped requests,
delays, replies lost after the peer committed, connections held open), runs cross-bank payments
both ways and two-bank exchanges (sometimes two takers racing, for the whole offer or for parts
of it), then heals the network. Once
both banks are quiet: both ledgers agree on every flow, nothing is credited twice, no hold is
left open, no proof is left standing between these honest banks, every chain verifies, every
asset sums to zero and both audits pass.
"""

from __future__ import annotations

import random
import threading
from typing import Any

import pytest

from cli.local import LocalBank
from tchain.clock import now_ms
from tchain.model import SignedEntry, fill_price
from tests.campaign import report, scale
from tests.helpers import Customer
from tests.quietbanks import (
    assert_sound,
    entries_by_evidence,
    faults,
    kinds,
    proxied_banks,
    records,
    wait_quiet,
)
from tests.realbanks import eventually, pay, register, submit
from validator.operator import deposit

B1, B2 = "bank1.example", "bank2.example"
USD, EUR = f"{B1}:USD", f"{B2}:EUR"
ROUNDS = scale(3, 25)
DEADLINE = 3  # seconds: faults outlast it, so deadlines pass mid-flow


@pytest.fixture
def network(tmp_path):
    with proxied_banks(tmp_path, {B1: "USD", B2: "EUR"}, settle_deadline=DEADLINE) as (
            (b1, b2), (p1, p2)):
        yield b1, b2, p1, p2


def assert_ledgers_agree(b1: LocalBank, b2: LocalBank) -> dict[str, int]:
    outcome = {"settled": 0, "released": 0}
    for payer_bank, payee_bank in ((b1, b2), (b2, b1)):
        credits = entries_by_evidence(payee_bank, "credit", "payment")
        for flow_id, flow in records(payer_bank, "flows").items():
            if flow["type"] == "transfer":
                expected = 1 if flow["state"] == "settled" else 0
                assert flow["state"] in ("settled", "released"), flow
                assert credits.get(flow_id, 0) == expected, (flow_id, flow, credits.get(flow_id))
                outcome[flow["state"]] += 1
    maker_side = records(b1, "flows")
    for take_id, flow in records(b2, "flows").items():
        if flow["type"] == "take":
            assert flow["state"] in ("settled", "released"), flow
            if flow["state"] == "settled":
                assert maker_side[take_id]["state"] == "settled", maker_side[take_id]
            else:
                assert take_id not in maker_side, maker_side[take_id]
            outcome[flow["state"]] += 1
    return outcome


class Round:
    def __init__(self, b1: LocalBank, b2: LocalBank, payers: list[Customer],
                 earners: list[Customer], rng: random.Random) -> None:
        self.b1, self.b2, self.payers, self.earners, self.rng = b1, b2, payers, earners, rng

    def payments(self) -> None:
        for payer in self.payers:
            payee = self.rng.choice(self.earners)
            r = pay(self.b1, payer, payee, B2, self.rng.randint(1, 40), USD)
            assert r.status_code in (201, 202), r.text
        for earner in self.earners:
            payee = self.rng.choice(self.payers)
            r = pay(self.b2, earner, payee, B1, self.rng.randint(1, 40), EUR)
            assert r.status_code in (201, 202), r.text

    def exchange(self) -> None:
        """An offer of 20 USD for 18 EUR, taken whole, or (every other time) one that allows
        parts of at least 5, taken in parts by one or two racing takers."""
        maker = self.payers[0]
        in_parts = self.rng.random() < 0.5
        body: dict[str, Any] = {
            "sell": {"asset": USD, "amount": "20"}, "buy": {"asset": EUR, "amount": "18"},
            "expires": now_ms() + 60_000}
        if in_parts:
            body["min_fill"] = "5"
        r = submit(self.b1, maker, "offer", body)
        assert r.status_code == 201, r.text
        offer = SignedEntry.from_dict(r.json()["entries"][0])
        try:
            eventually(lambda: offer.id in records(self.b2, "offers"), timeout=15)
        except AssertionError:  # the news never got through this round's faults
            return
        takers = self.earners[: self.rng.choice((1, 2))]
        parts = [self.rng.choice((5, 10, 15)) if in_parts else 20 for _ in takers]
        threads = [threading.Thread(target=self._take, args=(t, offer, n))
                   for t, n in zip(takers, parts, strict=True)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)

    def _take(self, taker: Customer, offer: SignedEntry, n: int) -> None:
        price = fill_price(20, 18, n)
        r = submit(self.b2, taker, "take", {
            "offer": offer.id, "validator": B1, "sell": {"asset": EUR, "amount": str(price)},
            "buy": {"asset": USD, "amount": str(n)}})
        # 409: bank2 heard of a fill that left less than this part
        assert r.status_code in (201, 202, 409), r.text

    def cancel_open_offers(self) -> None:
        for offer_id, record in records(self.b1, "offers").items():
            if record["state"] == "open":
                r = submit(self.b1, self.payers[0], "cancel", {"offer": offer_id})
                assert r.status_code in (201, 409, 422), r.text


def test_peer_faults_mid_flow_lose_and_double_nothing(network):
    b1, b2, p1, p2 = network
    payers = [register(b1, f"payer{i}") for i in range(3)]
    earners = [register(b2, f"earner{i}") for i in range(3)]
    for c in payers:
        deposit(b1.config, c.name, "100000", "USD")
    for c in earners:
        deposit(b2.config, c.name, "100000", "EUR")
    rng = random.Random(7)
    outcomes = {"settled": 0, "released": 0}
    entries = 0
    for number in range(ROUNDS):
        work = Round(b1, b2, payers, earners, rng)
        with faults((p1, p2), rng, cut=number % 3 == 2):  # every third: one direction cut
            work.payments()
            work.exchange()
        work.cancel_open_offers()
        wait_quiet(b1, b2)
        for key, n in assert_ledgers_agree(b1, b2).items():
            outcomes[key] = n
        entries += assert_sound(b1, b2)
    assert p1.injected + p2.injected > 0
    fills = kinds(b1).get("fill", 0)
    report("peer faults mid-flow", rounds=ROUNDS, faults_injected=p1.injected + p2.injected,
           by_fault=dict(p1.counts + p2.counts), flows_settled=outcomes["settled"],
           flows_released=outcomes["released"], fills=fills, entries_verified=entries, lost=0,
           credited_twice=0)
