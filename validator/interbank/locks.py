"""Hash-time-locked transfers between two banks (tchain.htlc, docs/adr/0008-hash-time-locks.md).

The payer's bank holds the lock and sends ``lock``; the payee's bank keeps it (``locks``) and
decides it once: claimed by its customer before the expiry by its clock (it then sends
``claimed`` with the claim), or expired. The payer's bank settles on a claim it checked as if
the peer lied, and past the expiry asks (``lock_status``) and releases only on the payee's
bank's ``lock_expired``: never on its own clock alone, as for transfers. A payee's bank that
answered ``lock_expired`` and then sends a claim of the lock has signed both: the payer's bank
keeps the two as a ``lock_conflict`` proof (tchain.proofs).
"""

from __future__ import annotations

import dataclasses

from tchain.books import settled
from tchain.errors import (
    ConflictError,
    EncodingError,
    ExpiredError,
    ForbiddenError,
    NotFoundError,
    VerificationError,
)
from tchain.flow_states import (
    Flow,
    FlowEvent,
    FlowState,
    FlowType,
    LockRecord,
    LockState,
    backoff_ms,
)
from tchain.htlc import lock_body
from tchain.messages import Message
from tchain.model import SignedEntry
from tchain.peer_claims import checked_claim, checked_lock
from tchain.peer_dates import check_not_ahead
from tchain.proofs import double_settlement_proof, lock_conflict_proof
from tchain.rules import release_hold, settle_hold
from validator.flows import enqueue, put_record, signer
from validator.interbank.base import Part
from validator.store import Reader, Writer

__all__ = ["ask_lock_status", "expire_lock", "on_claimed", "on_lock", "on_lock_answer",
           "on_lock_status"]


# --- at the payee's bank -------------------------------------------------------------------

def on_lock(part: Part, w: Writer, m: Message, peer_key: str, now: int) -> Message:
    """A peer's lock for one of our customers: kept (open) until claimed or expired here."""
    lock, body = checked_lock(m, peer_key)  # (believed: see PeerInbox._believable)
    part._not_ours(w, lock)
    if body.to_validator != part.bank.name:
        raise ConflictError(f"the lock is for a customer of {body.to_validator}"
                            if body.to_validator else "the lock names no to_validator: it is "
                            f"for a customer of its own bank, not of {part.bank.name}")
    part._state(w, body.to)  # our customer's (unknown_chain otherwise)
    part._incoming(w, m.sender, str(body.asset), body.amount)
    stored = w.record("locks", lock.id)
    if stored is not None and LockRecord.from_dict(stored).state is not LockState.OPEN:
        raise ExpiredError(f"lock {lock.id} was decided {stored['state']} here")
    if now >= body.expires:
        raise ExpiredError(f"lock {lock.id} expired at {body.expires} (it is {now} here)")
    if stored is None:
        put_record(w, "locks", lock.id, LockRecord.opened(m.sender, lock))
    return part._answer(m, "ack", now)


def on_lock_status(part: Part, w: Writer, m: Message, peer_key: str, now: int) -> Message:
    """The payer's bank asks, past the expiry, what we decided: our first decision, kept.
    A lock we never got is decided expired too (and refused if it comes later)."""
    lock = m.entries["lock"]
    body = lock_body(lock)
    stored = w.record("locks", lock.id)
    record = LockRecord(m.sender, lock.doc, LockState.OPEN, body.expires) if stored is None \
        else LockRecord.from_dict(stored)
    if record.validator != m.sender:
        raise NotFoundError(f"lock {lock.id} was not made at {m.sender}")
    if record.state is LockState.CLAIMED:
        assert record.claim is not None
        claim = SignedEntry.trusted(record.claim)
        payee = part._state(w, claim.chain)
        return part._answer(m, "lock_claimed", now, lock=lock.id, claim=claim,
                            claimant=signer(part.bank.key, part.bank.name, payee))
    if record.state is LockState.OPEN:
        if now < body.expires:
            raise ConflictError(f"lock {lock.id} expires at {body.expires}; it is {now} here")
        put_record(w, "locks", lock.id, record.expired())
    return part._answer(m, "lock_expired", now, lock=lock.id)


def expire_lock(part: Part, w: Writer, lock_id: str, now: int) -> str | None:
    """A lock kept here reached its expiry by our clock, unclaimed: decided expired (our
    first decision); one made here is released on its payer's chain at once."""
    stored = w.record("locks", lock_id)
    record = None if stored is None else LockRecord.from_dict(stored)
    if record is None or record.state is not LockState.OPEN or now < record.expires:
        return None
    put_record(w, "locks", lock_id, record.expired())
    if record.validator != part.bank.name or record.lock is None:
        return f"lock {lock_id} of {record.validator} expired unclaimed"
    lock = SignedEntry.trusted(record.lock)
    chain = part._state(w, lock.chain_id, lock_id)
    part._commit(w, release_hold(part.bank, chain, lock, now))
    return f"lock {lock_id} expired and released"


# --- at the payer's bank --------------------------------------------------------------------

def on_claimed(part: Part, w: Writer, m: Message, peer_key: str, now: int) -> Message:
    """The payee's bank claimed our lock: settle the hold with its claim as evidence."""
    claim, lock = checked_claim(m, peer_key)
    _one_claim(w, lock, claim)
    _settle_claimed(part, w, m, claim, lock, peer_key, now)
    return part._answer(m, "ack", now)


def _one_claim(r: Reader, lock: SignedEntry, claim: SignedEntry) -> None:
    """A lock settled here on a claim is claimed once: the same claim again is acknowledged,
    another is refused (the nineteenth tester had claims of a claimed lock, of another intent
    its payee signed, acknowledged one after the other). The two claims, both the peer's
    signatures, credit the lock twice on its side: kept as a ``double_settlement`` proof.

    Raises:
        ConflictError: the lock was settled on another claim.
    """
    stored = r.record("flows", lock.id)
    flow = None if stored is None else Flow.from_dict(stored)
    if flow is None or flow.state is not FlowState.SETTLED or not isinstance(flow.receipt, dict):
        return
    first = SignedEntry.from_dict(flow.receipt)
    if first.id == claim.id:
        return
    error = ConflictError(f"lock {lock.id} was claimed already, by claim {first.id}")
    try:
        proof = double_settlement_proof(first, claim)
    except VerificationError:
        raise error from None
    raise error.then(lambda kept: kept.put_record("proofs", claim.id, proof))


def _settle_claimed(part: Part, w: Writer, m: Message, claim: SignedEntry, lock: SignedEntry,
                    peer_key: str, now: int) -> None:
    """Settle our lock with the peer's checked claim, once. A claim of a lock the peer told us
    had expired is kept as a proof against it and refused.

    Raises:
        NotFoundError: the lock is not one of ours with this peer.
        ConflictError: the peer answered the lock expired before (a proof is kept).
    """
    check_not_ahead(claim, now, f"claim in the {m.type} message")  # (a lock_claimed too)
    stored = w.record("flows", lock.id)
    flow = None if stored is None else Flow.from_dict(stored)
    if flow is None or flow.type is not FlowType.LOCK or flow.peer != m.sender or \
            w.entry(flow.chain, flow.height) != lock.raw:
        raise NotFoundError(f"lock {lock.id} was not made at {part.bank.name} for "
                            f"{m.sender}")
    if flow.state is FlowState.SETTLED:
        return
    if flow.state is FlowState.RELEASED:
        assert isinstance(flow.receipt, dict)
        proof = lock_conflict_proof(expired=Message.trusted(flow.receipt), message=m,
                                    culprit_key=peer_key)
        raise ConflictError(f"{m.sender} answered lock {lock.id} expired, and now claims it "
                            "(kept as a lock_conflict proof)"
                            ).then(lambda kept: kept.put_record("proofs", m.id, proof))
    chain = part._state(w, flow.chain, lock.id)
    entry = part._close_with_peer(w, chain, lock.id, flow.peer, settled,
                                  lambda: settle_hold(part.bank, chain, claim, now))
    put_record(w, "flows", lock.id, flow.moved(FlowEvent.SETTLED, settled_height=entry.height,
                                               receipt=claim.doc))
    if flow.message is not None:
        w.delete_record("outbox", flow.message)


def ask_lock_status(part: Part, w: Writer, flow_id: str, flow: Flow, now: int) -> str:
    """Our lock is past its expiry (and the clocks' margin) unclaimed as far as we know: ask
    the payee's bank, whose answer decides (never our clock alone)."""
    lock = part._own_entry(w, flow.chain, flow.height)
    message = enqueue(w, part.bank.key, part.bank.name, flow.peer, "lock_status", now,
                      flow=flow_id, give_up=None, lock=lock)
    if flow.state is FlowState.PENDING:
        flow = flow.moved(FlowEvent.DEADLINE_PASSED, reason="expired here: asking "
                                                            f"{flow.peer}")
    put_record(w, "flows", flow_id, _with_message(flow, message))
    return f"lock {flow_id} expired here; asked {flow.peer}"


def _with_message(flow: Flow, message: str) -> Flow:
    return dataclasses.replace(flow, message=message)


def on_lock_answer(part: Part, w: Writer, message_id: str, request_type: str, flow_id: str,
                   answer: Message, peer_key: str, now: int) -> str | None:
    """The payee's bank's answer to our ``lock`` or ``lock_status`` (None: not one of
    those). A refused lock waits for its expiry (only then may its hold be released); a
    ``lock_status`` refused (its clock is behind ours) is asked again."""
    if request_type not in ("lock", "lock_status"):
        return None
    stored = w.record("flows", flow_id)
    flow = None if stored is None else Flow.from_dict(stored)
    if flow is None or flow.type is not FlowType.LOCK:
        return answer.type
    if answer.type in ("ack", "refused") and request_type == "lock":
        if answer.type == "refused":
            put_record(w, "flows", flow_id, _reason(flow, answer))
        return answer.type
    if answer.type == "refused":
        if flow.state is not FlowState.AWAITING_PEER:
            return f"already {flow.state.value}"
        lock = part._own_entry(w, flow.chain, flow.height)
        again = enqueue(w, part.bank.key, part.bank.name, flow.peer, "lock_status", now,
                        flow=flow_id, give_up=None, first_try=now + backoff_ms(4), lock=lock)
        put_record(w, "flows", flow_id, _with_message(_reason(flow, answer), again))
        return "asked again"
    if answer.type in ("lock_claimed", "lock_expired") and answer.fields["lock"] != flow_id:
        raise ForbiddenError("the answer is about another lock")
    if answer.type == "lock_claimed":
        claim, lock = checked_claim(answer, peer_key)
        _settle_claimed(part, w, answer, claim, lock, peer_key, now)
        return "settled"
    if answer.type == "lock_expired":
        if flow.state is not FlowState.AWAITING_PEER:
            return f"already {flow.state.value}"
        part._release_flow_hold(w, flow_id, flow, now, receipt=answer.doc,
                                reason=f"{flow.peer} answered expired")
        return "released"
    raise EncodingError(f"a {answer.type} does not answer a {request_type}")


def _reason(flow: Flow, answer: Message) -> Flow:
    return dataclasses.replace(flow, reason=f"{answer.sender}: {answer.fields.get('reason')}")
