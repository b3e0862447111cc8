"""A hypothesis state machine over two in-process banks (real LMDB stores, real signatures):
customers register, get deposits, pay within and across banks, make, take and cancel offers;
banks go down, lose replies, crash (their store closed and reopened), and time passes.

After every step: each bank's audit passes (every chain verifies, each asset balances once the
value that crossed to or from the peer is counted, every hold belongs to a live flow or offer)
and no customer's available balance is negative. Whenever the network is healed and settled:
each asset sums to exactly zero over both banks and no hold is left open.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
)

from tchain.errors import TChainError
from tests.campaign import scale
from tests.helpers import Clock, Customer
from tests.interbank_net import Net, NetBank, pin, totals
from validator.audit import audit

B1, B2 = "bank1.example", "bank2.example"
USD, EUR = f"{B1}:USD", f"{B2}:EUR"
HOME = {B1: USD, B2: EUR}


class TwoBanks(RuleBasedStateMachine):
    customers = Bundle("customers")
    offers = Bundle("offers")

    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="tchain-stateful-"))
        self.clock = Clock()
        self.banks = {name: NetBank(self.tmp / name, name, self.clock, deadline_ms=5_000)
                      for name in (B1, B2)}
        pin(self.banks[B1], self.banks[B2])
        self.net = Net(*self.banks.values())
        self.people: list[tuple[str, Customer]] = []
        self.steps = 0

    def teardown(self) -> None:
        try:
            self.settle_everything()
        finally:
            for bank in self.banks.values():
                bank.ledger.store.close()
            shutil.rmtree(self.tmp, ignore_errors=True)

    def _refusable(self):
        return contextlib.suppress(TChainError)

    # --- customers and money --------------------------------------------------------------

    @initialize(target=customers)
    def founders(self):
        """Two funded customers at each bank, so every run starts with money to move."""
        out = []
        for home in (B1, B2, B1, B2):
            home_customer = self.register(home)
            self.banks[home].deposit(home_customer[1], 10_000, HOME[home].split(":")[1])
            out.append(home_customer)
        return multiple(*out)

    @precondition(lambda self: len(self.people) < 8)
    @rule(target=customers, home=st.sampled_from([B1, B2]))
    def register(self, home: str) -> tuple[str, Customer]:
        customer = self.banks[home].join(f"c{len(self.people)}")
        self.people.append((home, customer))
        return home, customer

    @rule(who=customers, amount=st.integers(1, 5_000))
    def deposit(self, who, amount: int) -> None:
        home, customer = who
        self.banks[home].deposit(customer, amount, HOME[home].split(":")[1])

    @rule(payer=customers, payee=customers, amount=st.integers(1, 3_000))
    def pay(self, payer, payee, amount: int) -> None:
        """In the payer's home asset, to a payee at either bank (so within or across)."""
        (home, c), (to_home, to) = payer, payee
        asset = HOME[home]
        with self._refusable():
            self.banks[home].submit(c, "payment", {"to": to.chain, "to_validator": to_home,
                                                   "asset": asset, "amount": str(amount)})

    # Payments and takes are what the machine is about: each has a second rule, so they are
    # drawn twice as often as the housekeeping around them.
    @rule(payer=customers, payee=customers, amount=st.integers(1, 3_000))
    def pay_more(self, payer, payee, amount: int) -> None:
        self.pay(payer, payee, amount)

    # --- offers -----------------------------------------------------------------------------

    @rule(target=offers, maker=customers, sell=st.integers(1, 500), buy=st.integers(1, 500))
    def offer(self, maker, sell: int, buy: int):
        home, c = maker
        give, get = HOME[home], HOME[B2 if home == B1 else B1]
        try:
            entry = self.banks[home].submit(c, "offer", {
                "sell": {"asset": give, "amount": str(sell)},
                "buy": {"asset": get, "amount": str(buy)},
                "expires": self.clock.now + 20_000}).outcome.entries[0]
        except TChainError:
            return None
        return home, entry

    @rule(taker=customers, offer=offers)
    def take(self, taker, offer) -> None:
        if offer is None:
            return
        (home, c), (maker_home, entry) = taker, offer
        if home == maker_home:
            return  # taking an offer of one's own bank is not supported (refused)
        body = entry.intent.doc["intent"]["body"]
        if all(o["id"] != entry.id for o in self.banks[home].interbank.offers(None)):
            self.net.run(rounds=1)  # a customer takes what its bank lists: let the news in
        with self._refusable():
            self.banks[home].submit(c, "take", {"offer": entry.id, "validator": maker_home,
                                                "sell": body["buy"], "buy": body["sell"]})

    @rule(taker=customers, offer=offers)
    def take_more(self, taker, offer) -> None:
        self.take(taker, offer)

    @rule(offer=offers)
    def cancel(self, offer) -> None:
        if offer is None:
            return
        home, entry = offer
        maker = next(c for h, c in self.people if c.chain == entry.chain)
        with self._refusable():
            self.banks[home].submit(maker, "cancel", {"offer": entry.id})

    # --- the network, the clock and crashes -------------------------------------------------

    @rule(rounds=st.integers(1, 3))
    def deliver(self, rounds: int) -> None:
        self.net.run(rounds=rounds)

    @rule(ms=st.integers(0, 12_000))
    def time_passes(self, ms: int) -> None:
        self.clock.now += ms
        self.net.run(rounds=1)

    @rule(bank=st.sampled_from([B1, B2]))
    def toggle_down(self, bank: str) -> None:
        self.banks[bank].up = not self.banks[bank].up

    @rule(bank=st.sampled_from([B1, B2]))
    def toggle_lossy(self, bank: str) -> None:
        self.banks[bank].loses_replies = not self.banks[bank].loses_replies

    @rule(bank=st.sampled_from([B1, B2]))
    def crash_and_reopen(self, bank: str) -> None:
        """The process dies between two transactions: its LMDB environment is closed and the
        next use opens it again from disk."""
        self.banks[bank].ledger.store.close()

    @rule()
    def settle_everything(self) -> None:
        """Heal the network, let every flow finish and every offer expire: then each asset
        sums to exactly zero over both banks and nothing is held."""
        for bank in self.banks.values():
            bank.up, bank.loses_replies = True, False
        self.net.run(rounds=20)
        self.clock.now += 60_000
        self.net.run(rounds=20)
        assert all(t == 0 for t in totals(*self.banks.values()).values()), \
            totals(*self.banks.values())
        for home, c in self.people:
            state = self.banks[home].ledger.state(c.chain)
            assert not state.holds, f"{c.name} still holds {state.holds}"

    # --- after every step -------------------------------------------------------------------

    @invariant()
    def each_bank_audits_clean(self) -> None:
        for bank in self.banks.values():
            report = audit(bank.ledger)
            assert report.ok, report.problems

    @invariant()
    def no_available_balance_is_negative(self) -> None:
        for home, c in self.people:
            for asset, b in self.banks[home].ledger.state(c.chain).balances.items():
                assert b.balance - b.held >= 0, (c.name, asset, b)
                assert b.held >= 0


TwoBanks.TestCase.settings = settings(
    max_examples=scale(20, 100), stateful_step_count=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
test_two_banks_state_machine = TwoBanks.TestCase
