"""The two-bank state machine with partial fills (test_stateful_fills.TwoBanksWithFills) and
offers with a selection window (docs/adr/0008-best-taker.md): bids above the price, waiting
for the window across banks and at one bank, through lost replies, banks down and crashes.
The same invariants after every step: each bank's audit passes and no available balance is
negative; once settled, each asset sums to zero and no hold is open."""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import rule

from tchain.model import fill_price
from tests.unit.validator.test_stateful_banks import B1, B2, HOME, TwoBanks
from tests.unit.validator.test_stateful_fills import TwoBanksWithFills


class TwoBanksWithBids(TwoBanksWithFills):

    @rule(target=TwoBanks.offers, maker=TwoBanks.customers, sell=st.integers(1, 500),
          buy=st.integers(1, 500), min_fill=st.integers(1, 50), window=st.integers(1, 10))
    def offer_with_window(self, maker, sell: int, buy: int, min_fill: int, window: int):
        home, c = maker
        give, get = HOME[home], HOME[B2 if home == B1 else B1]
        with self._refusable():
            entry = self.banks[home].submit(c, "offer", {
                "sell": {"asset": give, "amount": str(sell)},
                "buy": {"asset": get, "amount": str(buy)},
                "expires": self.clock.now + 20_000, "window": window * 1000,
                "min_fill": str(min(min_fill, sell))}).outcome.entries[0]
            return home, entry
        return None

    @rule(taker=TwoBanks.customers, offer=TwoBanks.offers, part=st.integers(1, 500),
          extra=st.integers(0, 50))
    def bid(self, taker, offer, part: int, extra: int) -> None:
        """A take of a part, giving ``extra`` more than its price (refused for an offer
        without a window)."""
        if offer is None:
            return
        (home, c), (maker_home, entry) = taker, offer
        if c.chain == entry.chain:
            return
        body = entry.intent.doc["intent"]["body"]
        sells, buys = int(body["sell"]["amount"]), int(body["buy"]["amount"])
        n = max(1, sells * part // 500) if "min_fill" in body else sells
        if all(o["id"] != entry.id for o in self.banks[home].interbank.offers(None)):
            self.net.run(rounds=1)
        with self._refusable():
            self.banks[home].submit(c, "take", {
                "offer": entry.id, "validator": maker_home,
                "sell": {"asset": body["buy"]["asset"],
                         "amount": str(fill_price(sells, buys, n) + extra)},
                "buy": {"asset": body["sell"]["asset"], "amount": str(n)}})

    @rule(taker=TwoBanks.customers, offer=TwoBanks.offers, part=st.integers(1, 500),
          extra=st.integers(0, 50))
    def bid_again(self, taker, offer, part: int, extra: int) -> None:
        self.bid(taker, offer, part, extra)


TwoBanksWithBids.TestCase.settings = settings(
    max_examples=20, stateful_step_count=50, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
test_two_banks_with_bids_state_machine = TwoBanksWithBids.TestCase
