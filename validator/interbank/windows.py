"""The clock's part for offers with a selection window (docs/adr/0009-best-taker.md): when the
window closes, the takes that waited for it (validator.bids) are ranked (tchain.selection) and
decided best first against what remains, in the tick's one write transaction.

A take that fits what remains when its turn comes is decided as if it came now: a peer's by
the inbox, exactly as a take after the window (its checks again, the fill or settle, the
answer kept for its message); our customer's by the maker's fill or settle and the taker's
settle, the same entries two banks would write. A take that no longer fits (better bids took
its part, or what is left is less than it asks) is ``outbid``: a peer's refusal kept, so its
bank releases its taker's hold when it asks again; our customer's hold released at once.
"""

from __future__ import annotations

from typing import Any

from tchain.encoding import parse_own
from tchain.errors import OfferClosedError, OutbidError, RuleError
from tchain.flow_states import OfferRecord
from tchain.messages import Message
from tchain.model import SignedEntry, TakeBody
from tchain.rules import check_take, fill_hold, release_hold, settle_hold
from tchain.selection import Bid, ranked, window_closes
from validator.flows import close_offer, fill_offer, put_record
from validator.interbank.base import Part
from validator.interbank.inbox import PeerInbox
from validator.store import Writer

__all__ = ["Windows"]


class Windows(Part):
    """Decides the takes that waited for an offer's window (see the module docstring)."""

    def decide(self, w: Writer, offer_id: str, record: OfferRecord, now: int) -> list[str]:
        """Rank and decide every take waiting for ``offer_id``'s window; a line for each."""
        put_record(w, "offers", offer_id, record.decided())
        assert record.offer is not None
        offer = SignedEntry.trusted(record.offer)
        inbox = PeerInbox(self.ledger, fault=self.fault)
        waiting = {bid["take"]: bid for bid in record.bids}
        takes = {take_id: self._take_of(w, bid) for take_id, bid in waiting.items()}
        order = ranked((Bid(take_id, _body(take).buy.amount, _body(take).sell.amount,
                            waiting[take_id]["at"])
                        for take_id, take in takes.items() if take is not None),
                       window_closes(offer))
        done = []
        for bid in order:
            take = takes[bid.take]
            assert take is not None
            outbid = self._outbid(w, offer, take)
            message = waiting[bid.take].get("message")
            if message is not None:
                m = Message.from_dict(message)
                if w.peer(m.sender) is None:
                    continue  # unpinned since: only its operators may settle with it now
                raw = inbox.refuse_kept(w, m, now, outbid) if outbid else \
                    inbox.answer_take(w, m, now)
                answer = parse_own(raw)["message"]  # our own answer's bytes, just signed
                done.append(f"take {bid.take} of offer {offer_id}: {answer['type']} "
                            f"{answer.get('error', '')}".rstrip())
            else:  # expired meanwhile (this bank was down): refused, as a peer's would be
                done.append(self._decide_here(w, offer, take, now, outbid or (
                    OfferClosedError(f"offer {offer_id} expired at {record.expires}")
                    if now >= record.expires else None)))
        return done

    def _take_of(self, w: Writer, bid: dict[str, Any]) -> SignedEntry | None:
        if "message" in bid:
            return Message.from_dict(bid["message"]).entries["take"]
        raw = w.entry(bid["chain"], bid["height"])
        return None if raw is None else SignedEntry.from_bytes(raw)

    def _outbid(self, w: Writer, offer: SignedEntry, take: SignedEntry) -> OutbidError | None:
        """Why the take lost, if it did: better bids left it less than it asks."""
        maker = self._state(w, offer.chain_id, offer.id)
        held = maker.holds.get(offer.id)
        if held is None:
            return OutbidError(f"outbid: better takes of offer {offer.id} took all of it")
        try:
            check_take(_body(take), held)
        except RuleError as e:
            return OutbidError(f"outbid: better takes of offer {offer.id} left "
                               f"{held.amount} of it: {e.message}")
        return None

    def _decide_here(self, w: Writer, offer: SignedEntry, take: SignedEntry, now: int,
                     refused: RuleError | None) -> str:
        """Our customer's take: exchanged (paper §5.1, the entries of two banks in one write)
        or its hold released."""
        taker = self._state(w, take.chain_id, take.id)
        if take.id not in taker.holds:
            return f"take {take.id}: no longer held"
        if refused is not None:
            self._commit(w, release_hold(self.bank, taker, take, now))
            return f"take {take.id} of offer {offer.id}: refused {refused.code}"
        maker = self._state(w, offer.chain_id, offer.id)
        held = maker.holds[offer.id]
        part = check_take(_body(take), held) == "fill"
        sold = self._commit(w, (fill_hold if part else settle_hold)(self.bank, maker, take, now))
        self._commit(w, settle_hold(self.bank, taker, sold, now))
        if part:
            fill_offer(self.bank.key, self.bank.name, w, sold, now)
        else:
            close_offer(self.bank.key, self.bank.name, w, sold, now)
        return f"take {take.id} of offer {offer.id}: {sold.kind}"


def _body(take: SignedEntry) -> TakeBody:
    body = take.intent.body if take.intent is not None else None
    assert isinstance(body, TakeBody)
    return body
