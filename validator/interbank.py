"""The bank's side of every validator-to-validator flow, applied to the store.

Three entry points, each one write transaction, none doing network I/O (the validator's sender
and its peer endpoint do that around them):

- :meth:`Interbank.receive`: a pinned peer's signed message in, our signed answer out. The
  answer is kept by message id before the transaction commits, so a message delivered twice
  gets the same bytes back and changes nothing the second time.
- :meth:`Interbank.apply_answer`: the peer's signed answer to a message of our outbox: settle
  or release the hold the message is about, and drop the message from the outbox.
- :meth:`Interbank.tick`: the clock's part: close expired offers, and record a
  non-settlement proof when a peer has not settled an exchange by its deadline.

A hold waiting on a peer (a transfer or a take) is never released on our clock alone: the peer
may have done its side just before the deadline with every answer lost since. The message is
re-sent until the peer answers, and the peer's first answer to a message is final (kept in its
inbox): done before the deadline, or refused (``expired``) after it. So both ledgers agree once
the network heals; a peer that never comes back leaves the hold open and visible in the audit.

The winner among takes racing for one offer is the first take this bank commits: writes are
serialised by LMDB, the first settles the offer and closes it, every later one is refused with
``offer_closed`` and its bank releases its taker's hold.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

from tchain.books import Move, check_crossing, check_incoming, released, settled
from tchain.errors import (
    EncodingError,
    ForbiddenError,
    ForeignAssetError,
    MisconductError,
    NotFoundError,
    PositionError,
    RuleError,
    SignatureError,
    TChainError,
    VerificationError,
)
from tchain.flow_states import (
    ABSENT,
    CLOCK_MARGIN_MS,
    Flow,
    FlowEvent,
    FlowState,
    FlowType,
    OfferRecord,
    OutboxItem,
    timers_of,
)
from tchain.keys import check_ahead
from tchain.messages import Message, signed_message
from tchain.model import Effect, OfferBody, PaymentBody, SignedEntry
from tchain.peer_claims import checked_hold, checked_take, credits_the_payee, standing
from tchain.proofs import misconduct_proof, non_settlement_proof
from tchain.rules import (
    MAX_OFFER_MS,
    TIME_WINDOW_MS,
    Outcome,
    credit_transfer,
    release_hold,
    settle_hold,
)
from tchain.state import ChainState, Hold, closed_hold
from validator.flows import close_offer, enqueue, keep, offer_record, reschedule
from validator.ledger import Ledger
from validator.store import Failed, Reader, Writer

T = TypeVar("T")
X = TypeVar("X")

__all__ = ["FAULTS", "Interbank"]

FAULTS = frozenset({"skip-settle"})
ANSWER_KEPT_MS = 600_000  # a refusal outlives its message's deadline by this, then goes
MAX_EVIDENCE = 100  # misconduct proofs kept per peer
MAX_DEADLINE_MS = 86_400_000  # a peer's message is worth answering again for a day at most


class Interbank:
    """Cross-bank flows over one bank's ledger.

    Args:
        ledger: the bank's ledger (its store, key, name, clock and settle deadline).
        fault: ``"skip-settle"`` makes this bank a cheat for demonstrations and tests: it
            accepts takes and never settles them.
    """

    def __init__(self, ledger: Ledger, *, fault: str | None = None) -> None:
        if fault is not None and fault not in FAULTS:
            raise ValueError(f"fault must be one of {sorted(FAULTS)}, got {fault!r}")
        self.ledger = ledger
        self.fault = fault
        self.v = ledger.validator

    # --- helpers ----------------------------------------------------------------------------

    def _peer_entry(self, r: Reader, message: Message, field: str, peer_key: str
                    ) -> SignedEntry:
        """The entry in ``field``, signed by the peer, and every entry in its evidence signed
        by the key it names (as a chain's verifier will check them once we keep it): an entry
        of ours by being the very bytes we keep, the others by their signature."""
        entry = message.entries[field]
        try:
            entry.verify(peer_key)
        except SignatureError as e:
            raise SignatureError(f"the {field} in the {message.type} message is not signed by "
                                 f"{message.sender}'s pinned key") from e
        try:
            for index in range(len(entry.evidence)):
                evidence = entry.evidence_entry(index)
                if evidence.validator == self.v.public_key and evidence.chain is not None and \
                        r.entry(evidence.chain, evidence.height) == evidence.raw:
                    evidence.verified()
                evidence.verify()
        except (EncodingError, SignatureError) as e:
            raise MisconductError(f"the evidence in the {field} of the {message.type} message "
                                  f"does not verify: {e}", code="bad_signature",
                                  status=400) from e
        return entry

    def _own_entry(self, r: Reader, chain: str, height: int) -> SignedEntry:
        raw = r.entry(chain, height)
        assert raw is not None, f"flow names entry {height} of {chain}, which is not stored"
        return SignedEntry.from_bytes(raw)

    def _state(self, r: Reader, chain: str | None, closes: str | None = None) -> ChainState:
        """A chain of ours, with the one hold ``closes`` loaded (the hold the flow ends)."""
        state = None if chain is None else r.state(chain, () if closes is None else (closes,))
        if state is None:
            raise NotFoundError(f"chain {chain} is not registered at {self.v.name}",
                                code="unknown_chain")
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
            raise RuleError(f"the {entry.kind} names chain {entry.chain}, which is registered "
                            f"at {self.v.name}, not at the peer", code="bad_request",
                            status=400)

    def _incoming(self, w: Writer, peer: str, asset: str, amount: int) -> None:
        """May ``peer`` give us this now (tchain.books)? A third bank's asset, or more of ours
        than the peer could hold, is misconduct: only a dishonest bank sends it."""
        try:
            check_incoming(self.v.name, peer, asset, amount, w.position(peer, asset))
        except (ForeignAssetError, PositionError) as e:
            raise MisconductError.of(e) from e

    def _answer(self, message: Message, type_: str, now: int, **fields: Any) -> Message:
        return signed_message(self.v.key, type_, self.v.name, message.sender, now,
                              ref=message.id, **fields)

    # --- receiving a peer's message -------------------------------------------------------

    def receive(self, doc: Any, requester_key: str) -> bytes:
        """Apply a peer's signed message once; return our signed answer (canonical bytes).

        Raises:
            ForbiddenError: the requester is not a pinned peer, or the message is not from it
                or not to us (403, nothing changed).
            EncodingError, SignatureError: a malformed or badly signed message (400).
        """
        [answer] = self.receive_many([doc], requester_key)
        if isinstance(answer, TChainError):
            raise answer
        return answer

    def receive_many(self, docs: list[Any], requester_key: str, *, checked: bool = False
                     ) -> list[bytes | TChainError]:
        """Apply many of a peer's messages in one group commit; each answered (or refused with
        its error) on its own, as :meth:`receive` would. ``checked``: the documents came out
        of :func:`parse` (see SignedEntry.from_dict)."""
        now = self.ledger.clock()
        messages = [_parsed(doc, checked) for doc in docs]
        self._verify_ahead([m for m in messages if isinstance(m, Message)])
        return self._each(messages, lambda m: self._receive_work(_unparsed(m), requester_key,
                                                                 now))

    def _receive_work(self, message: Message, requester_key: str, now: int
                      ) -> Callable[[Writer], bytes]:
        def work(w: Writer) -> bytes:
            seen = w.answer(message.id)
            if seen is not None:
                return seen
            peer = w.peer(message.sender)
            if peer is None or peer["key"] != requester_key:
                raise ForbiddenError(f"key {requester_key} is not the pinned key of a peer "
                                     f"named {message.sender}; {self.v.name} takes messages "
                                     "only from its pinned peers")
            if message.to != self.v.name:
                raise ForbiddenError(f"the message is for {message.to}, not {self.v.name}")
            message.verify(peer["key"])
            if message.type not in _HANDLERS:
                raise EncodingError(f"a {message.type} is an answer, not a request")
            subject = _subject(message)
            try:
                self._believable(w, message, peer["key"])
                first = None if subject is None else w.subject(subject)
                if first is not None and (answered := w.answer(first)) is not None:
                    return answered  # the same intent or settlement in another message
                answer = _HANDLERS[message.type](self, w, message, peer["key"], now)
            except (RuleError, NotFoundError, VerificationError, SignatureError) as e:
                # an entry that does not verify is a malformed request, in the codes of §6
                code = "bad_request" if isinstance(e, VerificationError) else e.code
                answer = self._answer(message, "refused", now, error=code, reason=e.message)
                if isinstance(e, MisconductError):
                    self._keep_evidence(w, message, peer["key"], e, now)
                # a refusal is kept while the sender may still repeat the message (or carry
                # its hold in another), then let go: after that it is decided again (and a
                # transfer or take past its deadline refused again)
                # (a deadline a peer sets far off keeps it no longer than a day: found by the
                # outside attacker, whose refused messages named deadlines ten years out)
                keep_until = min(max(message.time, message.fields.get("deadline", 0)),
                                 now + MAX_DEADLINE_MS)
                w.put_answer(message.id, answer.raw, subject=subject,
                             forget_at=keep_until + CLOCK_MARGIN_MS + ANSWER_KEPT_MS)
                return answer.raw
            w.put_answer(message.id, answer.raw, subject=subject)
            return answer.raw

        return work

    def _believable(self, r: Reader, message: Message, peer_key: str) -> None:
        """What the message carries is the peer's, and a hold's or take's customer signed
        it (tchain.peer_claims), before anything else: a lie wrapped around an intent already
        answered is still a lie, refused and kept as one."""
        for field in message.entries:
            self._peer_entry(r, message, field, peer_key)
        check = _CLAIMS.get(message.type)
        if check is not None:
            check(message, peer_key)

    def _keep_evidence(self, w: Writer, message: Message, peer_key: str,
                       error: MisconductError, now: int) -> None:
        """Keep a signed account of a peer's dishonest message (a ``misconduct`` proof), up to
        MAX_EVIDENCE per peer: enough to show what it does, not a store it can fill."""
        if w.count_evidence(peer_key) >= MAX_EVIDENCE:
            return
        proof = misconduct_proof(self.v.key, reporter=self.v.name, culprit_key=peer_key,
                                 message=message, error=error, now=now)
        w.put_record("proofs", message.id, proof)

    def _on_transfer(self, w: Writer, m: Message, peer_key: str, now: int) -> Message:
        """We are the payee's bank: credit the payee if the payer's bank shows a hold its
        customer signed, of value it may give us (tchain.books), in time."""
        hold, body = checked_hold(m, peer_key)  # (believed: see _believable)
        self._not_ours(w, hold)
        asset = str(body.asset)
        self._incoming(w, m.sender, asset, body.amount)
        if now > m.fields["deadline"]:
            raise RuleError(f"the transfer's deadline {m.fields['deadline']} has passed "
                            f"(it is {now} here)", code="expired")
        payee = self._state(w, body.to)
        credit = self._commit(w, credit_transfer(self.v, payee, hold, now,
                                                 kyc_required=m.fields["kyc_required"]))
        w.move(m.sender, Move(asset, held=-body.amount))
        return self._answer(m, "credited", now, credit=credit)

    def _on_offer(self, w: Writer, m: Message, peer_key: str, now: int) -> Message:
        """A peer's offer, kept and listed if our customers could take it: one that holds
        what it sells, both assets IOUs of the peer or of us (tchain.books), still open."""
        offer = m.entries["offer"]  # (believed: see _believable)
        body = offer.intent.body if offer.intent is not None else None
        if offer.kind != "offer" or not isinstance(body, OfferBody) or \
                offer.effects != (Effect(str(body.sell.asset), 0, body.sell.amount),):
            raise RuleError(f"an offer message carries an offer entry that holds what it "
                            f"sells, got a {offer.kind} with {len(offer.effects)} effects",
                            code="bad_request", status=400)
        intent = standing(offer, "offer")
        if not offer.time - TIME_WINDOW_MS <= intent.time <= offer.time + TIME_WINDOW_MS or \
                not offer.time < body.expires <= offer.time + MAX_OFFER_MS:
            raise RuleError(f"the offer's intent ({intent.time}) or expiry ({body.expires}) is "
                            f"not what its bank could have signed at {offer.time}",
                            code="bad_request", status=400)
        check_crossing(self.v.name, m.sender, str(body.sell.asset), str(body.buy.asset))
        if body.expires <= now:
            raise RuleError(f"offer {offer.id} expired at {body.expires}", code="offer_closed",
                            status=409)
        if w.record("offers", offer.id) is None:
            keep(w, "offers", offer.id, offer_record(m.sender, offer))
        return self._answer(m, "ack", now)

    def _on_offer_closed(self, w: Writer, m: Message, peer_key: str, now: int) -> Message:
        closing = m.entries["entry"]  # (believed: see _believable)
        if closed_hold(closing) != m.fields["offer"]:
            raise RuleError("the entry does not close that offer", code="bad_request")
        stored = w.record("offers", m.fields["offer"])
        # the news of the close may outrun the offer's (a retry, or an exchange at the peer
        # right after the offer): remember it closed, so the offer is not listed when it
        # comes; let go when no offer made then could still be open
        record = OfferRecord.closed_unseen(m.sender, closing.time + MAX_OFFER_MS) \
            if stored is None else OfferRecord.from_dict(stored)
        if record.validator == m.sender:
            keep(w, "offers", m.fields["offer"], record.closed())
        return self._answer(m, "ack", now)

    def _on_take(self, w: Writer, m: Message, peer_key: str, now: int) -> Message:
        """We are the maker's bank: the first valid take settles the offer; later ones lose."""
        take, body = checked_take(m, peer_key)  # (believed: see _believable)
        self._not_ours(w, take)
        if body.validator != self.v.name:
            raise RuleError(f"the take is of an offer made at {body.validator}, not here",
                            code="bad_request")
        try:
            check_crossing(self.v.name, m.sender, str(body.buy.asset))
        except ForeignAssetError as e:
            raise MisconductError.of(e) from e
        self._incoming(w, m.sender, str(body.sell.asset), body.sell.amount)
        stored = w.record("offers", body.offer)
        record = None if stored is None else OfferRecord.from_dict(stored)
        if record is None or record.validator != self.v.name or record.offer is None:
            raise NotFoundError(f"offer {body.offer} was not made at {self.v.name}",
                                code="unknown_offer")
        if not record.is_open or now >= record.expires:
            raise RuleError(f"offer {body.offer} is no longer open", code="offer_closed",
                            status=409)
        if now > m.fields["deadline"]:
            raise RuleError(f"the take's deadline {m.fields['deadline']} has passed",
                            code="expired")
        offer = SignedEntry.from_dict(record.offer)
        maker = self._state(w, offer.chain, body.offer)
        settlement = self._commit(w, settle_hold(self.v, maker, take, now))
        # the maker's sold amount crosses to the peer, what its taker gives crosses to us
        w.move(m.sender, Move(str(body.buy.asset), held=body.buy.amount))
        w.move(m.sender, Move(str(body.sell.asset), held=-body.sell.amount))
        deadline = now + self.ledger.settle_deadline_ms
        message = enqueue(w, self.v.key, self.v.name, m.sender, "settle", now, flow=take.id,
                          give_up=None, settlement=settlement)
        keep(w, "flows", take.id, Flow.start(
            FlowType.EXCHANGE, chain=maker.chain, height=settlement.height, peer=m.sender,
            deadline=deadline, message=message, offer=offer.id, take=take.doc, answers=()))
        close_offer(self.v.key, self.v.name, w, settlement, now)
        return self._answer(m, "take_accepted", now, settlement=settlement,
                            deadline=deadline)

    def _on_settle(self, w: Writer, m: Message, peer_key: str, now: int) -> Message:
        """We are the taker's bank: the maker's bank settled; settle our taker's side."""
        settlement = m.entries["settlement"]  # (believed: see _believable)
        evidence = [settlement.evidence_entry(i) for i in range(len(settlement.evidence))]
        if settlement.kind != "settle" or len(evidence) != 1 or \
                evidence[0].validator != self.v.public_key or evidence[0].kind != "take":
            raise RuleError("a settle message carries the maker's settlement of one of our "
                            "takes", code="bad_request")
        take_id = evidence[0].id
        if self.fault == "skip-settle":
            return self._answer(m, "pending", now,
                                reason="settlement of this take is in progress")
        ours = self._settle_take(w, take_id, settlement, now)
        return self._answer(m, "settled", now, settlement=ours)

    def _settle_take(self, w: Writer, take_id: str, settlement: SignedEntry, now: int
                     ) -> SignedEntry:
        """Settle our taker's side once; a second call returns the same settle entry."""
        stored = w.record("flows", take_id)
        flow = None if stored is None else Flow.from_dict(stored)
        if flow is None or flow.type is not FlowType.TAKE:
            raise NotFoundError(f"take {take_id} was not made at {self.v.name}",
                                code="unknown_take")
        if flow.state is FlowState.SETTLED:
            assert flow.settled_height is not ABSENT
            return self._own_entry(w, flow.chain, flow.settled_height)
        taker = self._state(w, flow.chain, take_id)
        ours = self._close_with_peer(w, taker, take_id, flow.peer, settled,
                                     lambda: settle_hold(self.v, taker, settlement, now))
        keep(w, "flows", take_id, flow.moved(FlowEvent.SETTLED, settled_height=ours.height,
                                             receipt=settlement.doc))
        if flow.message is not None:
            w.delete_record("outbox", flow.message)
        return ours

    # --- applying a peer's answer to our message ------------------------------------------

    def apply_answer(self, message_id: str, doc: Any) -> str:
        """Apply the peer's signed answer to outbox message ``message_id``; return what it did.

        Raises:
            EncodingError, SignatureError, ForbiddenError: the answer is malformed, not signed
                by the pinned peer, or not an answer to this message (nothing changed).
        """
        [done] = self.apply_answers([(message_id, doc)])
        if isinstance(done, TChainError):
            raise done
        return done

    def apply_answers(self, answers: list[tuple[str, Any]], *, checked: bool = False
                      ) -> list[str | TChainError]:
        """Apply many answers (outbox message id, answer) in one group commit, each on its own
        as :meth:`apply_answer` would. ``checked`` as for :meth:`receive_many`."""
        now = self.ledger.clock()
        parsed = [(message_id, _parsed(doc, checked)) for message_id, doc in answers]
        self._verify_ahead([m for _, m in parsed if isinstance(m, Message)])
        return self._each(parsed, lambda a: self._answer_work(a[0], _unparsed(a[1]), now))

    def _verify_ahead(self, messages: list[Message]) -> None:
        """Check the signatures of peers' messages, and of the entries they carry, all at once
        (on every core) and before the write transaction, under the keys pinned for their
        senders now: inside it each is then found checked. One that is invalid, or from a
        sender not pinned, is left to be checked there and refused with its message."""
        with self.ledger.store.read() as r:
            keys = {p["name"]: p["key"] for p in r.peers()}
        check_ahead([check for m in messages if m.sender in keys
                     for check in m.verify_ahead(keys[m.sender])])

    def _each(self, items: list[X], make: Callable[[X], Callable[[Writer], T]]
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
        return [_unwrap(next(done)) if r is None else r for r in results]

    def _answer_work(self, message_id: str, answer: Message, now: int
                     ) -> Callable[[Writer], str]:
        def work(w: Writer) -> str:
            stored = w.record("outbox", message_id)
            if stored is None:
                return "already applied"
            item = OutboxItem.from_dict(stored)
            peer = w.peer(item.peer)
            if peer is None:
                raise ForbiddenError(f"{item.peer} is no longer a pinned peer")
            answer.verify(peer["key"])
            if answer.fields.get("ref") != message_id or answer.sender != item.peer:
                raise ForbiddenError("the answer is not the peer's answer to this message")
            # our own message, as we stored it: its type and peer are all the answer needs
            request = item.message["message"]
            return self._apply(w, message_id, item, request["type"], request["to"], answer,
                               peer["key"], now)

        return work

    def _apply(self, w: Writer, message_id: str, item: OutboxItem, request_type: str,
               peer: str, answer: Message, peer_key: str, now: int) -> str:
        stored = None if item.flow is None else w.record("flows", item.flow)
        flow = None if stored is None else Flow.from_dict(stored)
        if request_type == "settle" and answer.type != "settled":
            assert flow is not None and item.flow is not None and flow.answers is not ABSENT
            # The peer answers a repeat with the same bytes: keep each answer once, so a flow
            # whose settle is re-sent for days does not grow.
            if answer.doc not in flow.answers:
                keep(w, "flows", item.flow,
                     dataclasses.replace(flow, answers=(*flow.answers, answer.doc)))
            reschedule(w, message_id, now, f"{answer.type}: {answer.fields.get('reason')}")
            return f"peer answered {answer.type}"
        w.delete_record("outbox", message_id)
        if flow is None or item.flow is None or answer.type == "ack":
            return answer.type
        if answer.type == "refused":
            return self._release(w, item.flow, flow, now,
                                 f"{peer} refused: {answer.fields['reason']}")
        if answer.type == "credited":
            return self._finish(w, item.flow, flow,
                                self._peer_entry(w, answer, "credit", peer_key), now)
        if answer.type == "take_accepted":
            settlement = self._peer_entry(w, answer, "settlement", peer_key)
            if self.fault == "skip-settle":
                keep(w, "flows", item.flow, flow.moved(FlowEvent.ACCEPTED))
                return "accepted (not settling: fault skip-settle)"
            self._settle_take(w, item.flow, settlement, now)
            return "settled"
        if answer.type == "settled":
            receipt = self._peer_entry(w, answer, "settlement", peer_key)
            if closed_hold(receipt) != item.flow:
                raise ForbiddenError("the peer's settlement settles another take")
            late = flow.state is FlowState.DEFAULTED
            changes: dict[str, Any] = {}
            if late:  # settled after its deadline: the proof no longer shows value missing
                assert isinstance(flow.proof, str)
                w.delete_record("proofs", flow.proof)
                changes = {"proof": None, "reason": f"{peer} settled after the deadline"}
            keep(w, "flows", item.flow,
                 flow.moved(FlowEvent.SETTLED, receipt=receipt.doc, **changes))
            return "settled late" if late else "settled"
        raise EncodingError(f"a {answer.type} does not answer a {request_type}")

    def _finish(self, w: Writer, flow_id: str, flow: Flow, peer_entry: SignedEntry,
                now: int) -> str:
        if flow.state is not FlowState.PENDING:
            return f"already {flow.state.value}"
        chain = self._state(w, flow.chain, flow_id)
        credits_the_payee(peer_entry, self._payee(w, flow))
        entry = self._close_with_peer(w, chain, flow_id, flow.peer, settled,
                                      lambda: settle_hold(self.v, chain, peer_entry, now))
        keep(w, "flows", flow_id, flow.moved(FlowEvent.CREDITED, settled_height=entry.height,
                                             receipt=peer_entry.doc))
        return "settled"

    def _release(self, w: Writer, flow_id: str, flow: Flow, now: int, reason: str) -> str:
        if flow.state is not FlowState.PENDING:
            return f"already {flow.state.value}"
        chain = self._state(w, flow.chain, flow_id)
        holding = self._own_entry(w, flow.chain, flow.height)
        entry = self._close_with_peer(w, chain, flow_id, flow.peer, released,
                                      lambda: release_hold(self.v, chain, holding, now))
        keep(w, "flows", flow_id, flow.moved(FlowEvent.REFUSED, released_height=entry.height,
                                             reason=reason))
        if flow.message:
            w.delete_record("outbox", flow.message)
        return "released"

    def delivery_failed(self, message_id: str, error: str) -> None:
        """Count a failed delivery (the peer was down or answered with an error)."""
        self.deliveries_failed([(message_id, error)])

    def deliveries_failed(self, failures: list[tuple[str, str]]) -> None:
        """Count a failed delivery of each (message id, error), in one write."""
        now = self.ledger.clock()

        def work(w: Writer) -> None:
            for message_id, error in failures:
                reschedule(w, message_id, now, error)

        self.ledger.store.write(work)

    # --- the clock ------------------------------------------------------------------------

    def due(self) -> list[str]:
        """Outbox messages whose next try is due, oldest first (found through their
        ``sends`` timers: a timer whose message went or was put off is stale, see tick)."""
        now = self.ledger.clock()
        with self.ledger.store.read() as r:
            return _sends(r, now)[0]

    def tick(self) -> list[str]:
        """Apply every deadline that has passed; return a line for each thing done.

        A read transaction finds what is due first: the sender ticks every 200 ms, and an idle
        bank must not take the write lock from its workers that often. Both find what is due
        through the store's timers, so a tick costs what is due, not every flow ever kept.
        """
        now = self.ledger.clock()
        with self.ledger.store.read() as r:
            if r.meta(_TIMERS_KEPT) is not None and not _sends(r, now)[1] and \
                    not any(r.due(timer, now) for timer in _DEADLINES):
                return []

        def work(w: Writer) -> list[str]:
            if w.meta(_TIMERS_KEPT) is None:
                _keep_timers(w)
            for message_id, at in _sends(w, now)[1]:
                w.clear_due("sends", message_id, at)
            done = self.ledger.complete_recoveries(w, now)
            for message_id, at in w.due("answers", now):
                w.forget_answer(message_id, at)
            for flow_id, stored in self._due(w, "flows", now):
                flow = Flow.from_dict(stored)
                if _flow_expired(flow, now):
                    done.append(self._expire_flow(w, flow_id, flow))
            for offer_id, stored in self._due(w, "offers", now):
                record = OfferRecord.from_dict(stored)
                if now < record.expires:
                    continue  # a time set before, for a record put again since
                if record.validator != self.v.name:
                    w.delete_record("offers", offer_id)  # a peer's, nobody may take it now
                elif record.is_open and record.offer is not None:
                    offer = SignedEntry.from_dict(record.offer)
                    chain = self._state(w, offer.chain, offer_id)
                    entry = self._commit(w, release_hold(self.v, chain, offer, now))
                    close_offer(self.v.key, self.v.name, w, entry, now)
                    done.append(f"offer {offer_id} expired and released")
            for message_id, stored in self._due(w, "outbox", now):
                item = OutboxItem.from_dict(stored)
                if _abandoned(item, now):
                    w.delete_record("outbox", message_id)
                    done.append(f"gave up on {item.type} to {item.peer}")
            return done

        return self.ledger.store.write(work)

    @staticmethod
    def _due(w: Writer, db: str, now: int) -> list[tuple[str, dict[str, Any]]]:
        """The records of ``db`` whose deadline timer (named as the database) has come, each
        timer cleared as it is seen to (a record that changed since was given a new time
        when it was put again)."""
        found = []
        for record_id, at in w.due(db, now):
            w.clear_due(db, record_id, at)
            record = w.record(db, record_id)
            if record is not None:
                found.append((record_id, record))
        return found

    def _expire_flow(self, w: Writer, flow_id: str, flow: Flow) -> str:
        """An exchange the peer did not settle by its deadline: record the proof. The settle
        message stays in the outbox: a peer that settles late still completes the exchange."""
        proof = self._non_settlement(w, flow)
        keep(w, "flows", flow_id, flow.moved(
            FlowEvent.DEADLINE_PASSED, proof=proof,
            reason=f"{flow.peer} did not settle by {flow.deadline}"))
        return f"exchange {flow_id}: {flow.peer} did not settle; proof {proof}"

    def _non_settlement(self, w: Writer, flow: Flow) -> str:
        assert flow.offer is not ABSENT and flow.take is not ABSENT \
            and flow.answers is not ABSENT
        record = w.record("offers", flow.offer)
        assert record is not None
        proof = non_settlement_proof(
            self.v.key, offer=SignedEntry.from_dict(record["offer"]),
            take=SignedEntry.from_dict(flow.take),
            settlement=self._own_entry(w, flow.chain, flow.height),
            deadline=flow.deadline, answers=list(flow.answers))
        proof_id = SignedEntry.from_dict(flow.take).id
        w.put_record("proofs", proof_id, proof)
        return proof_id

    # --- reading ----------------------------------------------------------------------------

    def offers(self, asset: str | None, after: str | None = None,
               limit: int = 1000) -> list[dict[str, Any]]:
        """Open offers known here that sell or buy ``asset`` (all when None), up to ``limit``
        in id order from after ``after``: read from their index, so a page costs what it
        lists (found by the outside attacker: reading every offer ever seen, a public
        listing stalled the bank)."""
        now = self.ledger.clock()
        with self.ledger.store.read() as r:
            records = [(oid, r.record("offers", oid))
                       for oid in r.open_offers(asset, after, limit)]
        kept = [(oid, OfferRecord.from_dict(rec)) for oid, rec in records if rec is not None]
        return [{"id": oid, "validator": rec.validator, "offer": rec.offer}
                for oid, rec in kept if rec.expires > now]

    def proofs(self) -> list[dict[str, Any]]:
        with self.ledger.store.read() as r:
            return [proof for _, proof in r.records("proofs")]

    def flow(self, flow_id: str) -> dict[str, Any] | None:
        """A flow as stored (Flow.from_dict reads it)."""
        with self.ledger.store.read() as r:
            return r.record("flows", flow_id)


def _subject(message: Message) -> str | None:
    """What a request asks to be credited or settled once, whatever message carries it: the
    customer's intent inside its hold or take (one debit, however many entries a dishonest
    bank wraps it in), or the settlement's id."""
    for field in ("hold", "take", "settlement"):
        entry = message.entries.get(field)
        if entry is not None:
            return entry.id if entry.intent is None else entry.intent.id
    return None


def _past(timer: str, record: Flow | OutboxItem, now: int) -> bool:
    """Whether the record's time on ``timer`` (see its ``timers``) has come."""
    at = record.timers().get(timer)
    return at is not None and now >= at


def _parsed(doc: Any, checked: bool) -> Message | TChainError:
    try:
        return Message.from_dict(doc, checked=checked)
    except TChainError as e:
        return e


def _unparsed(message: Message | TChainError) -> Message:
    """The message, or the error its parse raised (raised again, for _each to report)."""
    if isinstance(message, TChainError):
        raise message
    return message


def _flow_expired(flow: Flow, now: int) -> bool:
    """An exchange the peer did not settle by its deadline (holds waiting on a peer never
    expire here: see the module docstring)."""
    return _past("flows", flow, now)


def _abandoned(item: OutboxItem, now: int) -> bool:
    """A message of no flow (an offer's news) past the time it is worth sending."""
    return _past("outbox", item, now)


def _sends(r: Reader, now: int) -> tuple[list[str], list[tuple[str, int]]]:
    """The send times that have come: the messages due now, oldest first, and the stale
    times, of messages sent since or put off (their record is gone, or has another next
    try), which the tick clears."""
    due: list[str] = []
    stale: list[tuple[str, int]] = []
    for mid, at in r.due("sends", now):
        item = r.record("outbox", mid)
        if item is not None and item["next_try"] == at:
            due.append(mid)
        else:
            stale.append((mid, at))
    return due, stale


# the timers a tick sees to (the sender sees to "sends")
_DEADLINES = ("flows", "offers", "outbox", "answers", "recoveries")
_TIMERS_KEPT = "timers"  # meta key: the timers index covers every record (see _keep_timers)


def _keep_timers(w: Writer) -> None:
    """Give every flow, offer and outbox record its timers: once, for a store kept before
    timers were (from then on every record is put with its times)."""
    for db in ("flows", "offers", "outbox"):
        for record_id, record in w.records(db):
            w.put_record(db, record_id, record, timers=timers_of(db, record).items())
    w.put_meta(_TIMERS_KEPT, "1")


_CLAIMS = {"transfer": checked_hold, "take": checked_take}
_HANDLERS = {
    "transfer": Interbank._on_transfer,
    "offer": Interbank._on_offer,
    "offer_closed": Interbank._on_offer_closed,
    "take": Interbank._on_take,
    "settle": Interbank._on_settle,
}


def _unwrap(outcome: Any) -> Any:
    """A write_each outcome: the result, or the protocol error the work refused with (any
    other exception is a bug or a store failure, raised)."""
    if isinstance(outcome, Failed):
        if isinstance(outcome.error, TChainError):
            return outcome.error
        raise outcome.error
    return outcome
