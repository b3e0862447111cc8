"""A correspondent bank's part of a routed payment, and the payer's bank's check of a
correspondent's answer (docs/adr/0015-correspondent-routes.md, docs/protocol.md §11
"Routes").

A correspondent takes a routed hold from the bank before it, holds on its own chain what it
hands on (tchain.route.forward_hold) and sends it on as a transfer of its own; it answers the
bank before it ``pending`` (not kept: asked again) until the next bank answers, then mirrors
that first answer, kept as any answer: on ``credited`` it settles its hold and credits its own
chain with what it got (its receipt, carrying the next bank's credit); on ``refused`` it
releases its hold and refuses. It never releases on its own clock.

What it keeps, in the ``routes`` database: under the payment's subject (the payer's intent
id) the hold it forwarded for it; under that hold's id the message it mirrors the answer to.
(Which hold carried a payment here first, so that only that hold gets its answer again, is
kept with every message's subject: validator.interbank.inbox.)
"""

from __future__ import annotations

from collections.abc import Iterable

from tchain.books import Move, check_crossing
from tchain.encoding import canonical, parse_own
from tchain.errors import (
    BadRequestError,
    ConflictError,
    ExpiredError,
    ForeignAssetError,
    MisconductError,
    RouteRefusedError,
    VerificationError,
)
from tchain.flow_states import Flow, FlowType
from tchain.keys import SigningKey
from tchain.messages import Message
from tchain.model import PaymentBody, SignedEntry
from tchain.peer_dates import check_not_ahead
from tchain.proofs import verify_proof
from tchain.route import (
    Terms,
    check_route,
    check_route_credit,
    forward_hold,
    hops_of,
    next_hop,
    origin,
    route_credit,
    route_subject,
    routed_body,
)
from tchain.route_proof import route_unpaid_proof
from tchain.rules import next_entry
from tchain.state import ChainState, entry_effects
from validator.flows import reschedule, signer, start_held_flow
from validator.interbank.base import Part
from validator.ledger import BANK_CHAIN
from validator.store import Reader, Writer

__all__ = ["TERMS", "answer_upstream", "asked_again", "check_received", "forward", "lied",
           "reserved", "set_terms", "terms", "to_correspondent"]

TERMS = "correspondent"  # meta: this bank's published terms as a correspondent
ASK_AGAIN_MS = 1_000  # a bank waiting on a correspondent asks again this often at most
MAX_PROOFS = 100  # proofs kept per peer, as for misconduct (validator.interbank.inbox)


def terms(r: Reader) -> Terms | None:
    """Our terms as a correspondent, or None if we are none."""
    raw = r.meta(TERMS)
    return None if raw in (None, "null") else Terms.from_dict(parse_own(str(raw).encode()))


def set_terms(w: Writer, value: Terms | None) -> None:
    """Set (or, with None, stop) our terms as a correspondent."""
    w.put_meta(TERMS, canonical(value.to_dict()).decode() if value is not None else "null")


def forward(part: Part, w: Writer, m: Message, hold: SignedEntry, body: PaymentBody,
            now: int) -> Message:
    """We are a correspondent on ``hold``'s route: hand it on once, and answer ``pending``
    until the next bank answers (validator.interbank.answers calls :func:`answer_upstream`).

    Raises:
        RouteRefusedError, ExpiredError, InsufficientFundsError, MisconductError: refused,
            nothing moved.
    """
    subject = route_subject(hold, m.sender)
    kept = w.record("routes", subject)
    if kept is not None:
        if kept["upstream"] != hold.id:
            raise ConflictError(f"this payment came here already in hold {kept['upstream']}")
        return part._answer(m, "pending", now, reason=f"handed on to {kept['next']}; waiting "
                            "for its answer")
    our_terms = terms(w)
    if our_terms is None:
        raise RouteRefusedError(f"{part.bank.name} is no correspondent: it publishes no terms")
    onward = body.route.via[1] if body.route is not None and len(body.route.via) > 1 else \
        body.to_validator
    assert onward is not None
    pinned = w.peer(onward)
    if pinned is None:
        raise RouteRefusedError(f"{onward} is not a peer of {part.bank.name}")
    payer = routed_body(origin(hold))
    assert payer is not None and payer.route is not None
    if pinned["key"] != payer.route.key_of(onward):  # its word would be ours alone
        raise RouteRefusedError(f"{part.bank.name} pins another key for {onward} than the "
                                "payer signed")
    try:
        check_crossing(part.bank.name, onward, our_terms.pay)
    except ForeignAssetError as e:
        raise RouteRefusedError(f"{part.bank.name} pays with {our_terms.pay}, which does not "
                                f"cross to {onward}") from e
    asset = str(body.asset)
    part._incoming(w, m.sender, asset, body.amount)
    position = w.position(m.sender, asset)
    our_terms.check_limit(m.sender, asset, -position.held + position.incoming + body.amount)
    if now > m.fields["deadline"]:
        raise ExpiredError(f"the transfer's deadline {m.fields['deadline']} has passed "
                           f"(it is {now} here)")
    chain = part._state(w, w.meta(BANK_CHAIN))
    if part.fault in ("keep-routed", "forge-next"):
        return _kept_without_forwarding(part, w, m, chain, hold, onward, our_terms, now)
    outcome, _ = forward_hold(part.bank, chain, hold, our_terms, now)
    ours = part._commit(w, outcome)
    after = outcome.states[0]
    w.move(m.sender, Move(asset, incoming=body.amount))  # ours once the next bank credits
    assert next_hop(_body(ours)) == onward
    start_held_flow(part.bank.key, part.bank.name, w, FlowType.TRANSFER, onward, ours, after,
                    m.fields["deadline"], now, now, extra={"payee": body.to}, hold=ours,
                    payer=signer(part.bank.key, part.bank.name, after),
                    kyc_required=m.fields["kyc_required"])
    w.put_record("routes", subject, {"upstream": hold.id, "next": onward, "ours": ours.id,
                                     "next_key": pinned["key"]})
    w.put_record("routes", ours.id, {"message": m.doc, "subject": subject})
    return part._answer(m, "pending", now, reason=f"handed on to {onward}; waiting for its "
                        "answer")


def _kept_without_forwarding(part: Part, w: Writer, m: Message, chain: ChainState,
                             hold: SignedEntry, onward: str, our_terms: Terms, now: int
                             ) -> Message:
    """The cheat of the ``keep-routed`` fault, for demonstrations and tests: a credit of the
    payer's money to ourselves, signed and never stored, carrying no next bank's credit; with
    ``forge-next``, carrying one forged under a key of our own making, named in ``next``."""
    pinned = w.peer(onward)
    assert pinned is not None
    evidence, next_key = [hold], str(pinned["key"])
    if part.fault == "forge-next":
        ours = forward_hold(part.bank, chain, hold, our_terms, now)[0].entries[0]
        fake = SigningKey.generate()
        body = _body(ours)
        evidence.append(SignedEntry.sign(
            fake, chain=body.to, height=1, prev="00" * 32, time=now, kind="credit",
            intent=None, effects=entry_effects("credit", body, onward), evidence=(ours,)))
        next_key = fake.public_key
    credit = next_entry(part.bank, chain, now, "credit", None,
                        entry_effects("credit", _body(hold), part.bank.name), evidence)
    return part._answer(m, "credited", now, credit=credit,
                        next={"name": onward, "key": next_key})


def answer_upstream(part: Part, w: Writer, flow_id: str, downstream: SignedEntry | None,
                    refusal: Message | None, now: int) -> None:
    """The next bank answered the hold we forwarded (``flow_id``), and it is settled or
    released: mirror its answer to the bank before us, kept for its asking again."""
    kept = w.record("routes", flow_id)
    if kept is None:
        return  # not a hold we forwarded
    m = Message.trusted(kept["message"])
    hold = m.entries["hold"]
    body = _body(hold)
    asset = str(body.asset)
    if downstream is not None:
        chain = part._state(w, w.meta(BANK_CHAIN))
        credit = part._commit(w, route_credit(part.bank, chain, hold, downstream, now))
        w.move(m.sender, Move(asset, held=-body.amount, incoming=-body.amount))
        onward = w.record("routes", kept["subject"])
        assert onward is not None  # (the key is the one we pinned when we handed it on)
        answer = part._answer(m, "credited", now, credit=credit,
                              next={"name": onward["next"], "key": onward["next_key"]})
    else:
        assert refusal is not None
        w.move(m.sender, Move(asset, incoming=-body.amount))
        answer = part._answer(m, "refused", now, error=refusal.fields["error"],
                              reason=f"{refusal.sender}: {refusal.fields['reason']}"[:1000])
    w.put_answer(m.id, answer.raw, subject=(kept["subject"], hold.id))


def check_received(part: Part, r: Reader, m: Message, hold: SignedEntry, now: int) -> None:
    """A routed hold a peer sent us, checked as if it lied before anything it brings is
    believed (docs/protocol.md §13 "Routes", "Dates").

    Raises:
        MisconductError: a route no honest bank sends.
        BadRequestRuleError: a hold nested in it is dated ahead of our clock (not misconduct:
            only our clock shows it).
    """
    check_route(hold, m.sender, part.bank.name, part.bank.public_key)
    _on_pinned_bank_chain(r, m, hold)
    for nested in hops_of(hold)[1:]:  # (the hold itself: as any entry of a message)
        check_not_ahead(nested, now, "hold nested in the transfer's hold")


def _on_pinned_bank_chain(r: Reader, m: Message, hold: SignedEntry) -> None:
    """A correspondent's hold is on its own bank chain: the one we pin for the sender, not a
    chain its ``payer`` record says is the bank's (attack 13, Finding 5: a customer's).

    Raises:
        MisconductError: (bad_request) it is not.
    """
    body = _body(hold)
    if body.route is None or body.route.forward is None:
        return
    pinned = r.peer(m.sender)
    if m.records["payer"].address != m.sender or pinned is None or \
            hold.chain != pinned.get("chain"):
        raise MisconductError.of(BadRequestError(
            f"a correspondent's hold is on its own bank chain, the one pinned for {m.sender}"))


def to_correspondent(hold: SignedEntry) -> bool:
    """Whether our hold went to a correspondent (not to the payee's bank)."""
    body = routed_body(hold)
    return body is not None and next_hop(body) != body.to_validator


def lied(part: Part, w: Writer, message_id: str, flow: Flow, answer: Message, now: int
         ) -> str | None:
    """A correspondent's ``credited`` to our routed hold, checked as if it lied; None if it
    holds (or the hold went to the payee's bank). If it lied, its signed answer is kept as a
    ``route_unpaid`` proof and the hold waits: the message is asked again, now and then."""
    hold = part._own_entry(w, flow.chain, flow.height)
    if not to_correspondent(hold):
        return None
    credit = part._peer_entry(w, answer, "credit", answer_key(w, answer), now)
    try:
        check_route_credit(credit, hold, answer.fields.get("next"))
    except VerificationError as e:
        kept = w.record("proofs", answer.id) is not None or _keep_proof(part, w, answer, hold,
                                                                        e.message, now)
        reschedule(w, message_id, now, f"the correspondent's credit does not hold: {e.message}")
        return (f"{answer.sender}'s credit does not hold"
                f"{' (route_unpaid proof kept)' if kept else ''}: {e.message}")
    return None


def _keep_proof(part: Part, w: Writer, answer: Message, hold: SignedEntry, reason: str,
                now: int) -> bool:
    """Keep a ``route_unpaid`` proof of the answer if it proves one (its credit took our
    hold's money): an answer that takes nothing is only not applied."""
    proof = route_unpaid_proof(part.bank.key, reporter=part.bank.name,
                               culprit_key=answer_key(w, answer), answer=answer, hold=hold,
                               reason=reason, now=now)
    try:
        verify_proof(proof)
    except VerificationError:
        return False
    if w.count_evidence(proof["culprit"]) >= MAX_PROOFS:
        return False  # enough to show what it does, not a store it can fill
    w.put_record("proofs", answer.id, proof)
    return True


def answer_key(r: Reader, answer: Message) -> str:
    peer = r.peer(answer.sender)
    assert peer is not None
    return str(peer["key"])


def asked_again(w: Writer, message_id: str, answer: Message, now: int) -> str:
    """A correspondent's ``pending``: not an answer; ask again soon."""
    reschedule(w, message_id, now, f"pending: {answer.fields.get('reason')}",
               soon=now + ASK_AGAIN_MS, waiting=True)
    return "peer answered pending"


def reserved(r: Reader, waiting: Iterable[str]) -> list[tuple[str, Move]]:
    """What the routed holds we got and handed on (the forwarding holds among ``waiting``,
    still waiting on the next bank) set aside with the banks before us: for the audit, which
    rebuilds the books from the entries."""
    out = []
    for hold_id in waiting:
        kept = r.record("routes", hold_id)
        if kept is None:
            continue
        m = Message.trusted(kept["message"])
        body = _body(m.entries["hold"])
        out.append((m.sender, Move(str(body.asset), incoming=body.amount)))
    return out


def _body(entry: SignedEntry) -> PaymentBody:
    body = entry.intent.body if entry.intent is not None else None
    assert isinstance(body, PaymentBody)
    return body
