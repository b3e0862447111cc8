"""What the parts of the bank's cross-bank side share: the ledger, and the helpers that read
our entries and states, check a peer's entries, commit an entry that closes a hold, and run
many works in one group commit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from tchain.books import Move, check_incoming, released, settled
from tchain.errors import (
    BadRequestRuleError,
    EncodingError,
    ForeignAssetError,
    MisconductError,
    PositionError,
    SignatureError,
    TChainError,
    UnknownChainError,
    UnknownTakeError,
    VerificationError,
)
from tchain.flow_states import (
    ABSENT,
    Flow,
    FlowEvent,
    FlowState,
    FlowType,
    OfferRecord,
)
from tchain.keys import check_ahead
from tchain.messages import Message, signed_message
from tchain.model import PaymentBody, SignedEntry
from tchain.peer_dates import check_not_ahead, check_settlement_dates
from tchain.proofs import double_settlement_proof, take_contradiction_proof
from tchain.rules import (
    Outcome,
    release_hold,
    settle_hold,
)
from tchain.state import ChainState, Hold
from validator.flows import put_record
from validator.ledger import Ledger
from validator.store import Failed, Reader, Writer

T = TypeVar("T")
X = TypeVar("X")

__all__ = ["FAULTS", "Part"]

FAULTS = frozenset({"skip-settle", "keep-routed", "forge-next"})


class Part:
    """One part of the cross-bank side (the inbox, the answers, the deadlines) over one
    bank's ledger.

    Args:
        ledger: the bank's ledger (its store, key, name, clock and settle deadline).
        fault: ``"skip-settle"`` makes this bank a cheat for demonstrations and tests: it
            accepts takes and never settles them; ``"keep-routed"``, a correspondent that
            answers ``credited`` to a routed payment without handing it on (validator.route);
            ``"forge-next"``, one that also forges the next bank's credit under a key of its
            own making, which it names in ``next`` (attack 13).
    """

    def __init__(self, ledger: Ledger, *, fault: str | None = None) -> None:
        if fault is not None and fault not in FAULTS:
            raise ValueError(f"fault must be one of {sorted(FAULTS)}, got {fault!r}")
        self.ledger = ledger
        self.fault = fault
        self.bank = ledger.bank

    def _peer_entry(self, r: Reader, message: Message, field: str, peer_key: str, now: int
                    ) -> SignedEntry:
        """The entry in ``field``, signed by the peer and dated no later than our clock allows
        (tchain.peer_dates: one rule for every peer entry we act on), and every entry in its
        evidence signed by the key it names (as a chain's verifier will check them once we
        keep it): an entry of ours by being the very bytes we keep, the others by their
        signature."""
        entry = message.entries[field]
        check_not_ahead(entry, now, f"{field} in the {message.type} message")
        try:
            entry.verify(peer_key)
        except SignatureError as e:
            raise SignatureError(f"the {field} in the {message.type} message is not signed by "
                                 f"{message.sender}'s pinned key") from e
        try:
            for index in range(len(entry.evidence)):
                evidence = entry.evidence_entry(index)
                if evidence.validator == self.bank.public_key and evidence.chain is not None and \
                        r.entry(evidence.chain, evidence.height) == evidence.raw:
                    evidence.verified()
                evidence.verify()
        except (EncodingError, SignatureError) as e:
            raise MisconductError.of(SignatureError(f"the evidence in the {field} of the "
                                                    f"{message.type} message does not verify: "
                                                    f"{e}")) from e
        return entry

    def _own_entry(self, r: Reader, chain: str, height: int) -> SignedEntry:
        raw = r.entry(chain, height)
        assert raw is not None, f"flow names entry {height} of {chain}, which is not stored"
        return SignedEntry.from_bytes(raw)

    def _state(self, r: Reader, chain: str | None, closes: str | None = None) -> ChainState:
        """A chain of ours, with the one hold ``closes`` loaded (the hold the flow ends)."""
        state = None if chain is None else r.state(chain, () if closes is None else (closes,))
        if state is None:
            raise UnknownChainError(f"chain {chain} is not registered at {self.bank.name}")
        return state

    def _commit(self, w: Writer, outcome: Outcome) -> SignedEntry:
        [entry], [state] = outcome.entries, outcome.states
        w.append(entry, state)
        return entry

    def _close_with_peer(self, w: Writer, chain: ChainState, hold_id: str, peer: str,
                         moves: Callable[[Hold], list[Move]], close: Callable[[], Outcome]
                         ) -> SignedEntry:
        """Commit the entry that closes a hold waiting on ``peer`` (``close`` refuses a hold
        not open), and move our position with the peer as the flow ended (tchain.books)."""
        hold = chain.holds.get(hold_id)
        entry = self._commit(w, close())
        assert hold is not None  # close() refused it otherwise
        for move in moves(hold):
            w.move(peer, move)
        return entry

    def _release_flow_hold(self, w: Writer, flow_id: str, flow: Flow, now: int,
                           **changes: Any) -> SignedEntry:
        """Release the hold a flow waited on its peer with, and record the flow refused: the
        one way a transfer's or a lock's hold ends when the peer's first answer says no."""
        chain = self._state(w, flow.chain, flow_id)
        holding = self._own_entry(w, flow.chain, flow.height)
        entry = self._close_with_peer(w, chain, flow_id, flow.peer, released,
                                      lambda: release_hold(self.bank, chain, holding, now))
        put_record(w, "flows", flow_id, flow.moved(
            FlowEvent.REFUSED, released_height=entry.height, **changes))
        return entry

    def _payee(self, r: Reader, flow: Flow) -> str:
        """The chain a transfer flow pays (kept in the flow; a flow recorded before it was,
        from the intent of the entry that holds)."""
        if flow.payee is not ABSENT:
            return flow.payee
        holding = self._own_entry(r, flow.chain, flow.height)
        body = holding.intent.body if holding.intent is not None else None
        return body.to if isinstance(body, PaymentBody) else ""

    def _not_ours(self, r: Reader, entry: SignedEntry) -> None:
        """A peer's entry is on a chain of the peer's, never on one registered here."""
        if entry.chain is not None and r.state_bytes(entry.chain) is not None:
            raise BadRequestRuleError(
                f"the {entry.kind} names chain {entry.chain}, which is registered "
                f"at {self.bank.name}, not at the peer")

    def _incoming(self, r: Reader, peer: str, asset: str, amount: int) -> None:
        """May ``peer`` give us this now (tchain.books)? A third bank's asset, or more of ours
        than the peer could hold, is misconduct: only a dishonest bank sends it."""
        try:
            check_incoming(self.bank.name, peer, asset, amount, r.position(peer, asset))
        except (ForeignAssetError, PositionError) as e:
            raise MisconductError.of(e) from e

    def _answer(self, message: Message, type_: str, now: int, **fields: Any) -> Message:
        return signed_message(self.bank.key, type_, self.bank.name, message.sender, now,
                              ref=message.id, **fields)

    def _settle_take(self, w: Writer, take_id: str, settlement: SignedEntry, now: int
                     ) -> SignedEntry:
        """Settle our taker's side once; a second call returns the same settle entry."""
        stored = w.record("flows", take_id)
        flow = None if stored is None else Flow.from_dict(stored)
        if flow is None or flow.type is not FlowType.TAKE:
            raise UnknownTakeError(f"take {take_id} was not made at {self.bank.name}")
        if flow.state is FlowState.SETTLED:
            assert flow.settled_height is not ABSENT
            self._keep_double_settlement(w, flow, settlement)
            return self._own_entry(w, flow.chain, flow.settled_height)
        self._on_the_offer_s_chain(w, flow, settlement, now)
        taker = self._state(w, flow.chain, take_id)
        ours = self._close_with_peer(w, taker, take_id, flow.peer, settled,
                                     lambda: settle_hold(self.bank, taker, settlement, now))
        put_record(w, "flows", take_id, flow.moved(FlowEvent.SETTLED, settled_height=ours.height,
                                             receipt=settlement.doc))
        # (our take is still asked until it is answered: a maker's bank that settled it on a
        # settle of its own and then refuses it has signed both, kept as a proof; attack 19)
        return ours


    def _keep_double_settlement(self, w: Writer, flow: Flow, settlement: SignedEntry) -> None:
        """A take settled here already, on another settlement the maker's bank signed: both
        are its signatures deciding one take twice, kept as a ``double_settlement`` proof
        (tchain.proofs). The take stays settled as it was: our answer does not change."""
        if flow.receipt == settlement.doc:
            return  # the same settlement again, as every honest exchange sends it twice
        self._keep_against_settlement(w, flow, settlement.id,
                                      lambda first: double_settlement_proof(first, settlement))

    def _keep_take_contradiction(self, w: Writer, flow: Flow, request: dict[str, Any],
                                 refusal: Message) -> None:
        """Our take, settled here on the maker's bank's settlement, then refused by it: both
        its signatures on one take, kept as a ``take_contradiction`` proof (tchain.proofs).
        The take stays settled: the settlement is the peer's word, and what it owes."""
        self._keep_against_settlement(w, flow, refusal.id, lambda first: take_contradiction_proof(
            first, Message.from_dict(request), refusal))

    @staticmethod
    def _keep_against_settlement(w: Writer, flow: Flow, key: str,
                                 prove: Callable[[SignedEntry], dict[str, Any]]) -> None:
        """Keep, by ``key`` and once, the proof ``prove`` makes of the settlement our take was
        settled on and what the maker's bank signed since; none if that does not prove its
        two words on our one take (``prove`` raises VerificationError)."""
        if not isinstance(flow.receipt, dict) or w.record("proofs", key) is not None:
            return
        try:
            proof = prove(SignedEntry.from_dict(flow.receipt))
        except VerificationError:
            return
        w.put_record("proofs", key, proof)

    def _on_the_offer_s_chain(self, r: Reader, flow: Flow, settlement: SignedEntry, now: int
                              ) -> None:
        """The maker's settle is an entry of the offer's chain at the peer: a settle on our
        own chain or on any other could be in no ledger of the peer's, and proves nothing
        against it (found by the fifth outside attacker, who had one accepted)."""
        self._not_ours(r, settlement)
        stored = r.record("offers", flow.offer) if flow.offer is not ABSENT else None
        offer = None if stored is None else OfferRecord.from_dict(stored).offer
        if offer is not None:
            # the maker's bank decides the takes that waited when the window closes, by its
            # clock, which dates the offer too: a settlement dated before, or got before by
            # our clock, could not be its decision (the seventh outside attacker had one
            # settled, then was answered outbid for the same take; the ninth one dated after
            # the close, sent before it)
            check_settlement_dates(settlement, SignedEntry.trusted(offer), now)
        maker_chain = flow.maker_chain
        if maker_chain is ABSENT:  # a take recorded before flows kept it: the offer's record
            maker_chain = ABSENT if offer is None else SignedEntry.trusted(offer).chain_id
        if maker_chain is not ABSENT and settlement.chain != maker_chain:
            # refused, not kept as misconduct: the message alone does not show the offer's
            # chain, so no proof of it would convince a third party (tchain.proofs)
            raise BadRequestRuleError(f"the settlement is an entry of chain "
                                      f"{settlement.chain}, not of the offer's chain "
                                      f"{maker_chain}")

    def _verify_ahead(self, messages: list[Message]) -> None:
        """Check the signatures of peers' messages, and of the entries they carry, all at once
        (on every core) and before the write transaction, under the keys pinned for their
        senders now: inside it each is then found checked. One that is invalid, or from a
        sender not pinned, is left to be checked there and refused with its message."""
        with self.ledger.store.read() as r:
            keys = {p["name"]: p["key"] for p in r.peers()}
        check_ahead([check for m in messages if m.sender in keys
                     for check in m.verify_ahead(keys[m.sender])])

    def _one_write_each(self, items: list[X], make: Callable[[X], Callable[[Writer], T]]
              ) -> list[T | TChainError]:
        """Make a work of each item (``make`` refuses a malformed one with its error) and run
        them all in one group commit; each result, or the protocol error that refused it."""
        works: list[Callable[[Writer], T]] = []
        results: list[T | TChainError | None] = []
        for item in items:
            try:
                works.append(make(item))
                results.append(None)
            except TChainError as e:
                results.append(e)
        done = iter(self.ledger.store.write_each(works))
        return [_raise_or_return(next(done)) if r is None else r for r in results]


def _parsed(doc: Any, read: Callable[[Any], Message]) -> Message | TChainError:
    try:
        return read(doc)
    except TChainError as e:
        return e


def _unparsed(message: Message | TChainError) -> Message:
    """The message, or the error its parse raised (raised again, for _one_write_each to report)."""
    if isinstance(message, TChainError):
        raise message
    return message



def _raise_or_return(outcome: Any) -> Any:
    """A write_each outcome: the result, or the protocol error the work refused with (any
    other exception is a bug or a store failure, raised)."""
    if isinstance(outcome, Failed):
        if isinstance(outcome.error, TChainError):
            return outcome.error
        raise outcome.error
    return outcome
