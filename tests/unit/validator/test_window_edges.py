"""The edge between an offer's window closing and its expiry, on in-process banks
(docs/adr/0009-best-taker.md): the seventh outside attacker made an offer expire 142 ms after
its window closed; its bank decided the takes that waited 193 ms after the close, after the
expiry, and released them all. The window must now close DECIDING_MS or more before the offer
expires, for a customer's offer and a peer's alike, so a decision at the close (or a few
seconds late) is made while the offer is open. After each: every chain verifies, every asset
sums to zero, no hold is left open, and each bank's audit is clean."""

from __future__ import annotations

import pytest

from tchain.errors import BadRequestRuleError
from tchain.selection import DECIDING_MS
from tests.unit.validator.test_best_taker import (
    WINDOW,
    all_sound_after_cancel,
    maker_and_taker,
    world,
)
from tests.unit.validator.test_partial_fills import EUR, USD, listed, take_part

__all__ = ["world"]  # the fixture, used by name


def offer_body(clock, expires_after_close: int) -> dict:
    return {"sell": {"asset": USD, "amount": "100"}, "buy": {"asset": EUR, "amount": "90"},
            "expires": clock.now + WINDOW + expires_after_close, "min_fill": "10",
            "window": WINDOW}


@pytest.mark.parametrize("after_close", [142, DECIDING_MS - 1])
def test_an_offer_expiring_too_soon_after_its_window_closes_is_refused(world, after_close):
    clock, b1, b2, _net = world
    alice, _bob = maker_and_taker(b1, b2)
    with pytest.raises(BadRequestRuleError, match="window"):
        b1.submit(alice, "offer", offer_body(clock, after_close))
    assert b1.balance(alice, USD) == (1000, 0)


def test_takes_that_waited_are_decided_at_a_late_close_of_an_offer_at_the_edge(world):
    """The window closes exactly DECIDING_MS before the expiry; the bank decides a moment
    before the expiry: the take that waited is filled, not released."""
    clock, b1, b2, net = world
    alice, bob = maker_and_taker(b1, b2)
    offer = b1.submit(alice, "offer", offer_body(clock, DECIDING_MS)).outcome.entries[0]
    net.run()
    assert listed(b2, offer) == "100"
    take_part(b2, bob, offer, 50, 45)
    net.run()
    assert b2.balance(bob, EUR) == (1000, 45)  # waiting
    clock.now = offer.time + WINDOW + DECIDING_MS - 1  # the bank was slow to decide
    net.run()
    assert b2.balance(bob, USD) == (50, 0) and b2.balance(bob, EUR) == (955, 0)
    assert b1.balance(alice, USD) == (950, 50) and b1.balance(alice, EUR) == (45, 0)
    all_sound_after_cancel(b1, b2, net, alice, offer)
