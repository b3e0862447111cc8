"""The two-bank state machine with partial fills (test_stateful_fills.TwoBanksWithFills) and
offers with a selection window (docs/adr/0009-best-taker.md): bids above the price, waiting
for the window across banks and at one bank, through lost replies, banks down and crashes.
The same invariants after every step: each bank's audit passes and no available balance is
negative; once settled, each asset sums to zero and no hold is open."""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import rule

from tests.campaign import scale
from tests.unit.validator.test_stateful_banks import TwoBanks
from tests.unit.validator.test_stateful_fills import TwoBanksWithFills


class TwoBanksWithBids(TwoBanksWithFills):

    @rule(target=TwoBanks.offers, maker=TwoBanks.customers, sell=st.integers(1, 500),
          buy=st.integers(1, 500), min_fill=st.integers(1, 50), window=st.integers(1, 10))
    def offer_with_window(self, maker, sell: int, buy: int, min_fill: int, window: int):
        return self._offer(maker, sell, buy, {"min_fill": str(min(min_fill, sell)),
                                              "window": window * 1000})

    @rule(taker=TwoBanks.customers, offer=TwoBanks.offers, part=st.integers(1, 500),
          extra=st.integers(0, 50))
    def bid(self, taker, offer, part: int, extra: int) -> None:
        """A take of a part, giving ``extra`` more than its price (refused for an offer
        without a window)."""
        self._take(taker, offer, part, extra)

    @rule(taker=TwoBanks.customers, offer=TwoBanks.offers, part=st.integers(1, 500),
          extra=st.integers(0, 50))
    def bid_again(self, taker, offer, part: int, extra: int) -> None:
        self.bid(taker, offer, part, extra)


TwoBanksWithBids.TestCase.settings = settings(
    max_examples=scale(10, 100), stateful_step_count=50, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
test_two_banks_with_bids_state_machine = TwoBanksWithBids.TestCase
