"""The maker's bank picks the best takers of an offer with a selection window (paper §5, step
9: "decision is up to bank #1 to select the best one"; docs/adr/0009-best-taker.md).

Takes of such an offer that come while its window is open wait, their takers' holds open;
when it closes they are decided together, best first, against what remains then. Best is:

1. what the take gives per unit of what it gets, ``p / n``, higher first, compared exactly in
   integers by cross-multiplication (``p1 * n2`` against ``p2 * n1``: no division, no float);
2. then the earlier arrival at the maker's bank;
3. then the take entry's id, so that two banks replaying the same bids rank them alike.

A take that no longer fits what remains when its turn comes (its part is gone, or what is left
is less than it asks) is ``outbid``. This module only decides; the validator keeps the bids
and writes what the decision makes.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass

from tchain.model import OfferBody, SignedEntry, TakeBody

__all__ = ["DECIDING_MS", "Bid", "bid_of", "ranked", "window_closes"]

# An offer's window closes at least this long before it expires, so that the takes that waited
# are decided, at the close, while the offer is still open (the seventh outside attacker made
# the expiry come 142 ms after the close, and the bank decided 193 ms after it: every take
# that waited was released). Ten seconds: a tick late, a bank restarting, still decide in time.
DECIDING_MS = 10_000


@dataclass(frozen=True, slots=True)
class Bid:
    """One waiting take: its entry id, what it gets (``n``) and gives (``p``), and when it
    came to the maker's bank (ms, by that bank's clock)."""

    take: str
    gets: int
    gives: int
    at: int


def bid_of(take: SignedEntry, at: int) -> Bid:
    """The bid a signed take entry makes, come at ``at``."""
    body = take.intent.body if take.intent is not None else None
    assert isinstance(body, TakeBody), "a bid is a take"
    return Bid(take.id, body.buy.amount, body.sell.amount, at)


def _compare(a: Bid, b: Bid) -> int:
    """Negative if ``a`` ranks before ``b`` (see the module docstring)."""
    mine, theirs = a.gives * b.gets, b.gives * a.gets  # a.gives/a.gets vs b.gives/b.gets
    if mine != theirs:
        return -1 if mine > theirs else 1
    if a.at != b.at:
        return -1 if a.at < b.at else 1
    return (a.take > b.take) - (a.take < b.take)


def ranked(bids: Iterable[Bid], closes: int | None = None) -> list[Bid]:
    """The bids, best first. Those that came at or after ``closes`` (the window had closed,
    but the takes that waited for it were not decided yet) come after all of those, first
    come first served, as takes after the window are."""
    bids = list(bids)
    late = sorted((b for b in bids if closes is not None and b.at >= closes),
                  key=lambda b: (b.at, b.take))
    inside = [b for b in bids if closes is None or b.at < closes]
    return sorted(inside, key=functools.cmp_to_key(_compare)) + late


def window_closes(offer: SignedEntry) -> int | None:
    """When the offer's selection window closes (ms): its entry's time plus its window; None
    for an offer without one. It runs from the entry, not from the first take, so every bank
    and every taker knows it from the signed offer alone, and no take moves it."""
    body = offer.intent.body if offer.intent is not None else None
    if not isinstance(body, OfferBody) or body.window is None:
        return None
    return offer.time + body.window
