"""The two-bank state machine (test_stateful_banks.TwoBanks) with partial fills: offers in
parts, and takes of any part of any offer, across banks and between customers of one bank,
racing, refused, released. The same invariants after every step: each bank's audit passes and
no available balance is negative; once settled, each asset sums to zero and no hold is open."""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import rule

from tchain.model import fill_price
from tests.campaign import scale
from tests.unit.validator.test_stateful_banks import B1, B2, HOME, TwoBanks


class TwoBanksWithFills(TwoBanks):

    @rule(target=TwoBanks.offers, maker=TwoBanks.customers, sell=st.integers(1, 500),
          buy=st.integers(1, 500), min_fill=st.integers(1, 50))
    def offer_in_parts(self, maker, sell: int, buy: int, min_fill: int):
        return self._offer(maker, sell, buy, {"min_fill": str(min(min_fill, sell))})

    def _offer(self, maker, sell: int, buy: int, terms: dict):
        """An offer of ``sell`` of the maker's bank's asset for ``buy`` of the other's, with
        ``terms`` (min_fill, window)."""
        home, c = maker
        give, get = HOME[home], HOME[B2 if home == B1 else B1]
        with self._refusable():
            entry = self.banks[home].submit(c, "offer", {
                "sell": {"asset": give, "amount": str(sell)},
                "buy": {"asset": get, "amount": str(buy)},
                "expires": self.clock.now + 20_000, **terms}).outcome.entries[0]
            return home, entry
        return None

    @rule(taker=TwoBanks.customers, offer=TwoBanks.offers, part=st.integers(1, 500))
    def take_part(self, taker, offer, part: int) -> None:
        self._take(taker, offer, part, 0)

    def _take(self, taker, offer, part: int, extra: int) -> None:
        """A take of a share of ``offer``, giving ``extra`` more than its price."""
        if offer is None:
            return
        (home, c), (maker_home, entry) = taker, offer
        if c.chain == entry.chain:
            return
        body = entry.intent.doc["intent"]["body"]
        sells, buys = int(body["sell"]["amount"]), int(body["buy"]["amount"])
        # a share of an offer in parts, from a little to all of it; a whole-only one whole
        n = max(1, sells * part // 500) if "min_fill" in body else sells
        if all(o["id"] != entry.id for o in self.banks[home].interbank.offers(None)):
            self.net.run(rounds=1)
        with self._refusable():
            self.banks[home].submit(c, "take", {
                "offer": entry.id, "validator": maker_home,
                "sell": {"asset": body["buy"]["asset"],
                         "amount": str(fill_price(sells, buys, n) + extra)},
                "buy": {"asset": body["sell"]["asset"], "amount": str(n)}})

    @rule(taker=TwoBanks.customers, offer=TwoBanks.offers, part=st.integers(1, 500))
    def take_another_part(self, taker, offer, part: int) -> None:
        self.take_part(taker, offer, part)

    @rule(taker=TwoBanks.customers, offer=TwoBanks.offers, part=st.integers(1, 500))
    def take_a_third_part(self, taker, offer, part: int) -> None:
        self.take_part(taker, offer, part)


TwoBanksWithFills.TestCase.settings = settings(
    max_examples=scale(12, 100), stateful_step_count=60, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
test_two_banks_with_fills_state_machine = TwoBanksWithFills.TestCase
