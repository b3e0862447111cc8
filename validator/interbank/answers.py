"""Applying a peer's signed answer to a message of our outbox: settle or release the hold the
message is about, and drop the message from the outbox; or count a failed delivery."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from tchain.books import settled
from tchain.errors import (
    EncodingError,
    ForbiddenError,
    TChainError,
)
from tchain.flow_states import (
    ABSENT,
    Flow,
    FlowEvent,
    FlowState,
    OutboxItem,
)
from tchain.messages import Message
from tchain.model import SignedEntry
from tchain.peer_claims import credits_the_payee
from tchain.rules import (
    settle_hold,
)
from tchain.state import closed_hold
from validator import route
from validator.bids import ask_again_at
from validator.flows import put_record, reschedule
from validator.interbank.base import Part, _parsed, _unparsed
from validator.interbank.fairness import keep_pending, note_outbid
from validator.interbank.locks import on_lock_answer
from validator.plans import Plans
from validator.store import Writer

__all__ = ["Answers"]


class Answers(Part):
    """Our outbox's side: the peers' answers, and the deliveries that failed."""

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

    def apply_answers(self, answers: list[tuple[str, Any]], *,
                      read: Callable[[Any], Message] = Message.from_dict
                      ) -> list[str | TChainError]:
        """Apply many answers (outbox message id, answer) in one group commit, each on its own
        as :meth:`apply_answer` would. ``read`` as for :meth:`receive_many`."""
        now = self.ledger.clock()
        parsed = [(message_id, _parsed(doc, read)) for message_id, doc in answers]
        self._verify_ahead([m for _, m in parsed if isinstance(m, Message)])
        return self._one_write_each(parsed, lambda a: self._answer_work(a[0], _unparsed(a[1]), now))

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
                put_record(w, "flows", item.flow,
                     dataclasses.replace(flow, answers=(*flow.answers, answer.doc)))
            reschedule(w, message_id, now, f"{answer.type}: {answer.fields.get('reason')}")
            return f"peer answered {answer.type}"
        if request_type == "take" and answer.type == "pending":
            # the offer ranks its takes when its window closes: no answer yet, ask again
            if flow is not None and item.flow is not None:
                keep_pending(w, item.flow, flow, answer)  # it waited in the window
            reschedule(w, message_id, now, f"pending: {answer.fields.get('reason')}",
                       soon=None if flow is None else ask_again_at(w, flow, now),
                       waiting=True)
            return "peer answered pending"
        if request_type == "transfer" and answer.type == "pending" and \
                w.record("plans", item.flow or "0" * 64) is not None:
            # a plan's transfer the payee bank's log does not show due yet: ask again, and
            # send it our log, which may hold what it lacks (docs/adr/0014)
            reschedule(w, message_id, now, f"pending: {answer.fields.get('reason')}",
                       waiting=True)
            Plans(self.ledger).remind(w, item.flow or "0" * 64, peer, now)
            return "peer answered pending"
        if request_type == "transfer" and answer.type == "pending":
            return route.asked_again(w, message_id, answer, now)  # a correspondent's wait
        if request_type == "transfer" and answer.type == "credited" and flow is not None and \
                (lie := route.lied(self, w, message_id, flow, answer, now)) is not None:
            return lie
        w.delete_record("outbox", message_id)
        if item.flow is not None and (done := on_lock_answer(
                self, w, message_id, request_type, item.flow, answer, peer_key, now)):
            return done
        if flow is None or item.flow is None or answer.type == "ack":
            return answer.type
        if answer.type == "refused" and request_type == "take" and \
                flow.state is FlowState.SETTLED:
            self._keep_take_contradiction(w, flow, item.message, answer)
            return "refused after its settlement (take_contradiction proof kept)"
        if answer.type == "refused":
            note_outbid(self.bank, w, flow, item.message, answer)
            done = self._release(w, item.flow, flow, now,
                                 f"{peer} refused: {answer.fields['reason']}")
            if done == "released":  # a hold we handed on: the bank before us hears it
                route.answer_upstream(self, w, item.flow, None, answer, now)
            return done
        if answer.type == "credited":
            credit = self._peer_entry(w, answer, "credit", peer_key, now)
            done = self._finish(w, item.flow, flow, credit, now)
            if done == "settled":
                route.answer_upstream(self, w, item.flow, credit, None, now)
            return done
        if answer.type == "take_accepted":
            settlement = self._peer_entry(w, answer, "settlement", peer_key, now)
            if self.fault == "skip-settle":
                put_record(w, "flows", item.flow, flow.moved(FlowEvent.ACCEPTED))
                return "accepted (not settling: fault skip-settle)"
            self._settle_take(w, item.flow, settlement, now)
            return "settled"
        if answer.type == "settled":
            receipt = self._peer_entry(w, answer, "settlement", peer_key, now)
            if closed_hold(receipt) != item.flow:
                raise ForbiddenError("the peer's settlement settles another take")
            late = flow.state is FlowState.DEFAULTED
            changes: dict[str, Any] = {}
            if late:  # settled after its deadline: the proof no longer shows value missing
                assert isinstance(flow.proof, str)
                w.delete_record("proofs", flow.proof)
                changes = {"proof": None, "reason": f"{peer} settled after the deadline"}
            put_record(w, "flows", item.flow,
                 flow.moved(FlowEvent.SETTLED, receipt=receipt.doc, **changes))
            return "settled late" if late else "settled"
        raise EncodingError(f"a {answer.type} does not answer a {request_type}")

    def _finish(self, w: Writer, flow_id: str, flow: Flow, peer_entry: SignedEntry,
                now: int) -> str:
        if flow.state is not FlowState.PENDING:
            return f"already {flow.state.value}"
        chain = self._state(w, flow.chain, flow_id)
        if not route.to_correspondent(self._own_entry(w, flow.chain, flow.height)):
            credits_the_payee(peer_entry, self._payee(w, flow))  # (else: route.lied checked)
        entry = self._close_with_peer(w, chain, flow_id, flow.peer, settled,
                                      lambda: settle_hold(self.bank, chain, peer_entry, now))
        put_record(w, "flows", flow_id, flow.moved(FlowEvent.CREDITED, settled_height=entry.height,
                                             receipt=peer_entry.doc))
        Plans(self.ledger).hold_closed(w, flow_id, entry, now)  # a plan's transfer: done
        return "settled"

    def _release(self, w: Writer, flow_id: str, flow: Flow, now: int, reason: str) -> str:
        if flow.state is not FlowState.PENDING:
            return f"already {flow.state.value}"
        entry = self._release_flow_hold(w, flow_id, flow, now, reason=reason)
        Plans(self.ledger).hold_closed(w, flow_id, entry, now)  # a plan's transfer: failed
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
