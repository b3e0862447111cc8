"""When a peer's entry may be dated: the one rule for every entry a peer signs and we act on,
and the dates a maker's settlement of one of our takes must keep (docs/adr/0013-a-peer-s-dates.md).

A pinned key proves who dated an entry, never that the date is true: a peer can date its
entries as it likes, and each date is checked here against what we know for ourselves, our
clock and the signed offer. Pure: the callers (validator.interbank) pass the clock in.
"""

from __future__ import annotations

from tchain.errors import BadRequestRuleError
from tchain.flow_states import CLOCK_MARGIN_MS
from tchain.model import OfferBody, SignedEntry
from tchain.selection import window_closes

__all__ = ["check_not_ahead", "check_settlement_dates"]


def check_not_ahead(entry: SignedEntry, now: int, what: str) -> None:
    """A peer's entry dated later than our clock by more than the clocks' margin was not made
    yet, whatever its bank's key says: refused (not misconduct: only our clock shows it, so no
    proof would convince a third party). The ninth outside attacker had fills, claims and
    offers dated years ahead settled or listed; locks alone were checked.

    Raises:
        BadRequestRuleError: it is dated too far ahead.
    """
    if entry.time > now + CLOCK_MARGIN_MS:
        raise BadRequestRuleError(f"the {what} ({entry.kind} {entry.id}) is dated {entry.time}, "
                                  f"later than now ({now}) by more than the clocks' margin")


def check_settlement_dates(settlement: SignedEntry, offer: SignedEntry, now: int) -> None:
    """The maker's settle or fill of our take is its bank's decision, dated by its clock: not
    after the offer expired (§3 refuses a take decided then), and for an offer with a
    selection window, not before the window closed, by its date nor by our clock (the maker's
    bank decides when the window closes; our clock runs within the margin of its, so a
    decision we get while the window is open here was not made yet).

    Raises:
        BadRequestRuleError: naming the broken date.
    """
    body = offer.intent.body if offer.intent is not None else None
    if isinstance(body, OfferBody) and settlement.time >= body.expires:
        raise BadRequestRuleError(f"the settlement is dated {settlement.time}, when offer "
                                  f"{offer.id} had expired (at {body.expires})")
    closes = window_closes(offer)
    if closes is not None and min(settlement.time, now + CLOCK_MARGIN_MS) < closes:
        raise BadRequestRuleError(f"the settlement is dated {settlement.time} and it is {now} "
                                  f"here: offer {offer.id}'s window closes at {closes}")
