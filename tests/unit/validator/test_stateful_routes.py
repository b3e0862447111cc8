"""A hypothesis state machine over three in-process banks in a line (bank1 - bank2 - bank3,
bank2 a correspondent taking both sides' USD at par for a fee of 1): customers at both ends
pay each other through bank2, and direct to bank2's customers; banks go down, lose replies,
crash, and time passes (past deadlines too).

After every step: each bank's audit passes (every chain verifies, the books are the entries'
books, routes in flight included) and no available balance is negative. Whenever the network
is healed and settled: each asset sums to zero over the three banks and nothing is held, on
any chain, a correspondent's own included (docs/adr/0015-correspondent-routes.md).
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from tchain.errors import TChainError
from tests.campaign import scale
from tests.helpers import Clock, Customer
from tests.interbank_net import Net, NetBank, pin, shut, totals
from tests.routenet import make_correspondent, routed
from validator.audit import audit

B1, B2, B3 = "bank1.example", "bank2.example", "bank3.example"
NAMES = (B1, B2, B3)


class ThreeInALine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="tchain-routes-"))
        self.clock = Clock()
        self.banks = {n: NetBank(self.tmp / n, n, self.clock, deadline_ms=5_000) for n in NAMES}
        pin(self.banks[B1], self.banks[B2])
        pin(self.banks[B2], self.banks[B3])
        make_correspondent(self.banks[B2], accept=(f"{B1}:USD", f"{B3}:USD"),
                           pay=f"{B2}:USD", fee=1)
        self.net = Net(*self.banks.values())
        self.people: dict[str, Customer] = {}
        for bank in NAMES:
            c = self.people[bank] = self.banks[bank].join(f"c{bank[4]}")
            self.banks[bank].deposit(c, 10_000)

    def teardown(self) -> None:
        try:
            self.settle_everything()
        finally:
            shut(self.banks.values(), self.tmp)

    @rule(forth=st.booleans(), amount=st.integers(1, 4_000), fee=st.integers(0, 2))
    def pay_through(self, forth: bool, amount: int, fee: int) -> None:
        """An end pays the other end through bank2 (a fee of 0 is refused by bank2), in its
        bank's USD or in bank2's USD it was paid."""
        home, other = (B1, B3) if forth else (B3, B1)
        for asset in (f"{home}:USD", f"{B2}:USD"):
            with contextlib.suppress(TChainError):
                self.banks[home].submit(self.people[home], "payment", routed(
                    self.people[other], self.banks[other], [self.banks[B2]], asset,
                    amount + fee, amount))

    @rule(forth=st.booleans(), amount=st.integers(1, 2_000))
    def pay_the_correspondent_s_customer(self, forth: bool, amount: int) -> None:
        home = B1 if forth else B3
        with contextlib.suppress(TChainError):
            self.banks[home].submit(self.people[home], "payment", {
                "to": self.people[B2].chain, "to_validator": B2, "asset": f"{B2}:USD",
                "amount": str(amount)})

    @rule(rounds=st.integers(0, 3), ms=st.integers(0, 8_000))
    def network_and_clock(self, rounds: int, ms: int) -> None:
        """Messages go round, then time passes (a deadline may pass with a route in flight)."""
        self.net.run(rounds=rounds)
        self.clock.now += ms

    @rule(bank=st.sampled_from(NAMES), fault=st.sampled_from(["down", "lossy", "crash"]))
    def a_bank_fails(self, bank: str, fault: str) -> None:
        """A bank goes down or comes back, starts or stops losing its replies, or dies between
        two transactions (its store closed, opened again from disk on its next use)."""
        target = self.banks[bank]
        if fault == "down":
            target.up = not target.up
        elif fault == "lossy":
            target.loses_replies = not target.loses_replies
        else:
            target.ledger.store.close()

    @rule()
    def settle_everything(self) -> None:
        for bank in self.banks.values():
            bank.up, bank.loses_replies = True, False
        for _ in range(15):
            self.net.run(rounds=5)
            self.clock.now += 1_100
        assert all(t == 0 for t in totals(*self.banks.values()).values()), \
            totals(*self.banks.values())
        for bank in self.banks.values():
            with bank.ledger.store.read() as r:
                assert r.open_holds() == [], (bank.name, r.open_holds())

    @invariant()
    def every_book_holds(self) -> None:
        """Each bank's audit passes, and no customer may spend more than it has."""
        problems = [p for bank in self.banks.values() for p in audit(bank.ledger).problems]
        assert problems == []
        negative = [(c.name, asset) for bank, c in self.people.items()
                    for asset, b in self.banks[bank].ledger.state(c.chain).balances.items()
                    if b.balance < b.held or b.held < 0]
        assert negative == []

ThreeInALine.TestCase.settings = settings(
    max_examples=scale(8, 100), stateful_step_count=30, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
test_three_banks_in_a_line_state_machine = ThreeInALine.TestCase
