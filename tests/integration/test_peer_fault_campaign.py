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
from tests.fault_proxy import FaultProxy
from tests.helpers import Customer
from tests.realbanks import (
    assert_every_chain_sound,
    eventually,
    pay,
    read,
    register,
    submit,
    totals,
)
from validator.operator import deposit, run_audit
from validator.peers import add_peer

B1, B2 = "bank1.example", "bank2.example"
USD, EUR = f"{B1}:USD", f"{B2}:EUR"
ROUNDS = scale(3, 25)
DEADLINE = 3  # seconds: faults outlast it, so deadlines pass mid-flow


@pytest.fixture
def network(tmp_path):
    p1, p2 = FaultProxy(seed=1), FaultProxy(seed=2)
    b1 = LocalBank(tmp_path / "b1", B1, assets=("USD",), settle_deadline=DEADLINE,
                   public_url=p1.url)
    b2 = LocalBank(tmp_path / "b2", B2, assets=("EUR",), settle_deadline=DEADLINE,
                   public_url=p2.url)
    p1.start(b1.port)
    p2.start(b2.port)
    try:
        with b1, b2:
            add_peer(b1.config, p2.url)
            add_peer(b2.config, p1.url)
            yield b1, b2, p1, p2
    finally:
        p1.close()
        p2.close()


def records(bank: LocalBank, db: str) -> dict[str, Any]:
    return read(bank, lambda r: dict(r.records(db)))


def credits_by_hold(bank: LocalBank) -> dict[str, int]:
    """How many credit entries at ``bank`` carry each peer hold as their evidence."""
    def scan(r: Any) -> dict[str, int]:
        out: dict[str, int] = {}
        for chain in r.chain_ids(None, 10**6):
            for raw in r.entries(chain, 0, 10**6):
                entry = SignedEntry.from_bytes(raw)
                if entry.kind == "credit" and entry.evidence:
                    hold = SignedEntry.from_dict(entry.evidence[0])
                    if hold.kind == "payment":
                        out[hold.id] = out.get(hold.id, 0) + 1
        return out
    return dict(read(bank, scan))


def quiet(b1: LocalBank, b2: LocalBank) -> bool:
    """No message waiting and no flow still in progress at either bank."""
    for bank in (b1, b2):
        if records(bank, "outbox"):
            return False
        if any(f["state"] in ("pending", "accepted", "awaiting_peer")
               for f in records(bank, "flows").values()):
            return False
    return True


def assert_ledgers_agree(b1: LocalBank, b2: LocalBank) -> dict[str, int]:
    outcome = {"settled": 0, "released": 0}
    for payer_bank, payee_bank in ((b1, b2), (b2, b1)):
        credits = credits_by_hold(payee_bank)
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


def kinds(bank: LocalBank) -> dict[str, int]:
    """How many entries of each kind the bank's chains hold."""
    def scan(r: Any) -> dict[str, int]:
        out: dict[str, int] = {}
        for chain in r.chain_ids(None, 10**6):
            for raw in r.entries(chain, 0, 10**6):
                kind = SignedEntry.from_bytes(raw).kind
                out[kind] = out.get(kind, 0) + 1
        return out
    return dict(read(bank, scan))


def no_holds(bank: LocalBank) -> None:
    def check(r: Any) -> None:
        for chain in r.chain_ids(None, 10**6):
            state = r.state_with_holds(chain)
            assert not state.holds, (chain, state.holds)
    read(bank, check)


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
        for proxy in (p1, p2):
            faults = rng.sample(("drop", "delay", "lose_reply", "blackhole"), 2)
            proxy.set(**{f: rng.uniform(0.1, 0.3) for f in faults})
        if number % 3 == 2:
            rng.choice((p1, p2)).set(drop=1.0)  # one direction cut completely
        work = Round(b1, b2, payers, earners, rng)
        work.payments()
        work.exchange()
        p1.heal()
        p2.heal()
        work.cancel_open_offers()
        eventually(lambda: quiet(b1, b2), timeout=90)
        for key, n in assert_ledgers_agree(b1, b2).items():
            outcomes[key] = n
        for bank in (b1, b2):
            no_holds(bank)
            assert records(bank, "proofs") == {}
            entries += assert_every_chain_sound(bank)
            audit = run_audit(bank.config)
            assert audit.ok, audit.problems
        assert all(t == 0 for t in totals(b1, b2).values()), totals(b1, b2)
    assert p1.injected + p2.injected > 0
    fills = kinds(b1).get("fill", 0)
    report("peer faults mid-flow", rounds=ROUNDS, faults_injected=p1.injected + p2.injected,
           by_fault=dict(p1.counts + p2.counts), flows_settled=outcomes["settled"],
           flows_released=outcomes["released"], fills=fills, entries_verified=entries, lost=0,
           credited_twice=0)
