"""Receiving a pinned peer's signed message: our signed answer out, kept by message id before
the transaction commits, so a message delivered twice gets the same bytes back and changes
nothing the second time.

The winner among takes racing for one offer is the first take this bank commits: writes are
serialised by LMDB, the first settles the offer and closes it, every later one is refused with
``offer_closed`` and its bank releases its taker's hold.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from tchain.books import Move, check_crossing
from tchain.digest import sha256_hex
from tchain.encoding import parse
from tchain.errors import (
    BadRequestError,
    BadRequestRuleError,
    ConflictError,
    EncodingError,
    ExpiredError,
    ForbiddenError,
    ForeignAssetError,
    MisconductError,
    NotFoundError,
    OfferClosedError,
    RuleError,
    SignatureError,
    TChainError,
    UnknownOfferError,
    VerificationError,
)
from tchain.flow_states import (
    CLOCK_MARGIN_MS,
    Flow,
    FlowType,
    OfferRecord,
)
from tchain.messages import Message
from tchain.model import OfferBody, PaymentBody, PlanBody, SignedEntry, TakeBody
from tchain.peer_claims import (
    checked_claim,
    checked_hold,
    checked_lock,
    checked_take,
    crossing,
    incoming,
    standing,
)
from tchain.proofs import misconduct_proof
from tchain.route import check_route, is_routed, origin, route_subject
from tchain.rules import (
    MAX_OFFER_MS,
    TIME_WINDOW_MS,
    check_offer_open,
    check_take,
    credit_transfer,
    fill_hold,
    offer_terms_error,
    settle_hold,
)
from tchain.selection import window_closes
from tchain.state import closed_hold, entry_effects, filled_hold, offer_hold, settled_by
from validator import route
from validator.bids import keep_bid
from validator.flows import close_offer, enqueue, fill_offer, offer_record, put_record
from validator.interbank import locks
from validator.interbank.base import Part, _parsed, _unparsed
from validator.interbank.fairness import note_winner
from validator.plans import Plans
from validator.store import Reader, Writer

__all__ = ["PeerInbox"]

log = logging.getLogger("tchain.validator")

ANSWER_KEPT_MS = 600_000  # a refusal outlives its message's deadline by this, then goes
MAX_EVIDENCE = 100  # misconduct proofs kept per peer
MAX_DEADLINE_MS = 86_400_000  # a peer's message is worth answering again for a day at most
# A transfer or take is decided only this long after its customer signed the intent it carries
# (an honest bank holds within TIME_WINDOW_MS of the intent and gives its peer at most a day),
# and what we decide on an intent is kept at least as long: so no intent is decided twice, by
# a refusal let go and the same hold sent again (attack 18: credited against a hold released).
MAX_INTENT_AGE_MS = MAX_DEADLINE_MS + TIME_WINDOW_MS + CLOCK_MARGIN_MS


class PeerInbox(Part):
    """A pinned peer's messages to us: a transfer, an offer and its close, a take, a settle."""

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

    def receive_many(self, docs: list[Any], requester_key: str, *,
                     read: Callable[[Any], Message] = Message.from_dict
                     ) -> list[bytes | TChainError]:
        """Apply many of a peer's messages in one group commit; each answered (or refused with
        its error) on its own, as :meth:`receive` would. ``checked``: the documents came out
        of :func:`parse` (see SignedEntry.from_dict)."""
        now = self.ledger.clock()
        messages = [_parsed(doc, read) for doc in docs]
        self._verify_ahead([m for m in messages if isinstance(m, Message)])
        return self._one_write_each(
            messages, lambda m: self._receive_work(_unparsed(m), requester_key, now))

    def _receive_work(self, message: Message, requester_key: str, now: int
                      ) -> Callable[[Writer], bytes]:
        def work(w: Writer) -> bytes:
            seen = w.answer(message.id)
            if seen is not None:
                return seen
            peer = w.peer(message.sender)
            if peer is None or peer["key"] != requester_key:
                raise ForbiddenError(f"key {requester_key} is not the pinned key of a peer "
                                     f"named {message.sender}; {self.bank.name} takes messages "
                                     "only from its pinned peers")
            if message.to != self.bank.name:
                raise ForbiddenError(f"the message is for {message.to}, not {self.bank.name}")
            message.verify(peer["key"])
            if message.type not in _HANDLERS:
                raise EncodingError(f"a {message.type} is an answer, not a request")
            return self._kept(w, message, peer["key"], now, _HANDLERS[message.type])

        return work

    def answer_take(self, w: Writer, message: Message, now: int) -> bytes:
        """Decide a take that waited for its offer's window (validator.interbank.windows), as
        if it came now, and keep the answer as any other."""
        seen = w.answer(message.id)
        if seen is not None:  # (one take in two waiting messages: decided with the first)
            return seen
        peer = w.peer(message.sender)
        assert peer is not None, "the caller keeps bids of pinned peers only"
        return self._kept(w, message, peer["key"], now, PeerInbox._on_take)

    def refuse_kept(self, w: Writer, message: Message, now: int, error: RuleError) -> bytes:
        """Refuse a message with ``error``, and keep the refusal as any other."""
        return self._refused(w, message, error, "", now)

    def _kept(self, w: Writer, message: Message, peer_key: str, now: int,
              handler: Callable[[PeerInbox, Writer, Message, str, int], Message]) -> bytes:
        """Our answer to ``message`` by ``handler``, kept by its id (a refusal until its
        sender may no longer repeat it); a take's ``pending`` is not kept, it is no answer."""
        subject = _subject(message)
        believed = False
        try:
            self._believable(w, message, peer_key, now)
            believed = True
            about, carrier = subject or ("", "")
            first = w.subject(about) if about else None
            if first is not None and (answered := w.answer(first[0])) is not None:
                self._same_carrier_or_conflict(w, message, carrier, first[1])
                return self._decided_before(w, message, answered, now)
            _not_too_old(message, now)
            answer = w.all_or_nothing(lambda nested: handler(self, nested, message, peer_key, now))
        except (RuleError, NotFoundError, VerificationError, SignatureError) as e:
            for work in e.after:
                work(w)
            # a message we could not believe decides nothing of what it carries: the peer
            # whose it is may still send it (attack 18: another bank's hold, not signed by
            # the sender, took that bank's transfer of it); nor does another entry of an
            # intent, refused as one (a conflict): the first entry's is still to come
            return self._refused(w, message, e, peer_key, now,
                                 believed and e.code != ConflictError.code)
        if message.type in ("take", "transfer") and answer.type == "pending":
            return answer.raw  # waiting (an offer's window, a plan's turn): asked again
        w.put_answer(message.id, answer.raw, subject=subject)
        return answer.raw

    def _same_carrier_or_conflict(self, r: Reader, message: Message, carrier: str, first: str
                                  ) -> None:
        """A message of an intent answered already (``first``: the entry that carried it to
        us first) gets that answer only in that very entry, re-wrapped: another hold or take
        of the same intent is refused ``conflict`` (§11), after the checks of a routed hold and
        of what crosses (a lie is misconduct). The outside testers, signing as a sending bank,
        handed us another hold of its customer's intent first (attacks 13, 15 and 17): the
        honest transfer then got a decision about that other hold, which its bank could
        neither apply nor release, and its hold and its payer's stayed open for ever.

        Raises:
            ConflictError, MisconductError: it is another entry.
        """
        if not first or first == carrier:  # (a store older than the carrier: not known)
            return
        hold = message.entries.get("hold")
        if hold is not None and is_routed(hold):
            check_route(hold, message.sender, self.bank.name, self.bank.public_key)
        try:  # (a third bank's IOU: a lie the message alone shows, as in the first entry)
            check_crossing(self.bank.name, message.sender, *crossing(message))
        except ForeignAssetError as e:
            raise MisconductError.of(e) from e
        moving = incoming(message)
        if moving is not None:  # (more of our IOU than it holds: a lie our books show)
            self._incoming(r, message.sender, *moving)
        raise ConflictError(f"this intent came here already, in entry {first}")

    def _decided_before(self, w: Writer, message: Message, answered: bytes, now: int) -> bytes:
        """Our answer to ``message``, whose intent, hold or settlement another message carried
        first: the decision kept then (the same credit, settlement or refusal), as our answer
        to this message, under its ``ref``, and kept by its id. The first answer's own bytes
        name the first message, so the sender of this one could not take them: the round 17
        tester sent a bank's real hold ahead of it, in a message of its own, and that bank's
        transfer was never answered (its hold, and its payer's, stayed open)."""
        decided = Message.trusted(parse(answered))
        fields = {k: v for k, v in decided.fields.items() if k != "ref"}
        answer = self._answer(message, decided.type, now, **fields)
        w.put_answer(message.id, answer.raw,
                     forget_at=_forget_at(message, now) if decided.type == "refused" else None)
        return answer.raw

    def _refused(self, w: Writer, message: Message, e: TChainError, peer_key: str, now: int,
                 decides: bool = True) -> bytes:
        # an entry that does not verify is a malformed request, in the codes of §6
        code = BadRequestError.code if isinstance(e, VerificationError) else e.code
        answer = self._answer(message, "refused", now, error=code, reason=e.message)
        if isinstance(e, MisconductError):
            self._keep_evidence(w, message, peer_key, e, now)
        w.put_answer(message.id, answer.raw, subject=_subject(message) if decides else None,
                     forget_at=_forget_at(message, now))
        return answer.raw

    def _believable(self, r: Reader, message: Message, peer_key: str, now: int) -> None:
        """What the message carries is the peer's, and a hold's or take's customer signed
        it (tchain.peer_claims), before anything else: a lie wrapped around an intent already
        answered is still a lie, refused and kept as one."""
        for field in message.entries:
            self._peer_entry(r, message, field, peer_key, now)
        check = _CLAIMS.get(message.type)
        if check is not None:
            check(message, peer_key)

    def _keep_evidence(self, w: Writer, message: Message, peer_key: str,
                       error: MisconductError, now: int) -> None:
        """Keep a signed account of a peer's dishonest message (a ``misconduct`` proof), up to
        MAX_EVIDENCE per peer: enough to show what it does, not a store it can fill."""
        if w.count_evidence(peer_key) >= MAX_EVIDENCE:
            return
        try:
            proof = misconduct_proof(self.bank.key, reporter=self.bank.name,
                                     culprit_key=peer_key, message=message, error=error, now=now)
        except VerificationError as e:
            # a proof that fails its own check is our bug, never a reason to answer outside
            # §6: the refusal stands, signed and kept (the seventh outside attacker got an
            # unsigned 422 ``invalid`` for a lock the proof checker did not know)
            log.error("no misconduct proof kept for %s %s: %s", message.type, message.id, e)
            return
        w.put_record("proofs", message.id, proof)

    def _on_transfer(self, w: Writer, m: Message, peer_key: str, now: int) -> Message:
        """We are the payee's bank: credit the payee if the payer's bank shows a hold its
        customer signed, of value it may give us (tchain.books), in time."""
        hold, body = checked_hold(m, peer_key)  # (believed: see _believable)
        self._not_ours(w, hold)
        if isinstance(body, PaymentBody) and body.route is not None:  # docs/adr/0015
            route.check_received(self, w, m, hold, now)
            if body.to_validator != self.bank.name:
                return route.forward(self, w, m, hold, body, now)
        asset = str(body.asset)
        self._incoming(w, m.sender, asset, body.amount)
        if now > m.fields["deadline"]:
            expired = ExpiredError(f"the transfer's deadline {m.fields['deadline']} has passed "
                                   f"(it is {now} here)")
            if isinstance(body, PlanBody):  # our late word goes with it (docs/adr/0014)
                expired.then(lambda kept: Plans(self.ledger).say_late_with(kept, hold, now))
            raise expired
        payee = self._state(w, body.to if isinstance(body, PaymentBody) else
                            self.ledger.chain_of_address(w, body.to or ""))  # a plan's: address
        outcome = credit_transfer(self.bank, payee, hold, now,
                                  kyc_required=m.fields["kyc_required"])
        plan = body if isinstance(body, PlanBody) else None
        waiting = None if plan is None else Plans(self.ledger).payee_turn(w, hold, now)
        if waiting is not None:  # our log lacks only others' words: asked again, decided then
            return self._answer(m, "pending", now, reason=waiting)
        credit = self._commit(w, outcome)
        if plan is not None:
            Plans(self.ledger).credited(w, hold, credit)
        w.move(m.sender, Move(asset, held=-body.amount))
        return self._answer(m, "credited", now, credit=credit)

    def _on_offer(self, w: Writer, m: Message, peer_key: str, now: int) -> Message:
        """A peer's offer, kept and listed if our customers could take it: one that holds
        what it sells, both assets IOUs of the peer or of us (tchain.books), still open."""
        offer = m.entries["offer"]  # (believed: see _believable)
        body = offer.intent.body if offer.intent is not None else None
        if offer.kind != "offer" or not isinstance(body, OfferBody) or \
                offer.effects != entry_effects("offer", body, m.sender):
            raise BadRequestRuleError(
                f"an offer message carries an offer entry that holds what it "
                f"sells, got a {offer.kind} with {len(offer.effects)} effects")
        intent = standing(offer, "offer")
        terms = offer_terms_error(offer.time, body)  # (a window past the expiry was listed)
        if not offer.time - TIME_WINDOW_MS <= intent.time <= offer.time + TIME_WINDOW_MS or \
                terms is not None:
            raise BadRequestRuleError(
                f"the offer's intent ({intent.time}) or expiry ({body.expires}) is "
                f"not what its bank could have signed at {offer.time}: {terms or 'its time'}")
        check_crossing(self.bank.name, m.sender, str(body.sell.asset), str(body.buy.asset))
        if body.expires <= now:
            raise OfferClosedError(f"offer {offer.id} expired at {body.expires}")
        if w.record("offers", offer.id) is None:
            put_record(w, "offers", offer.id, offer_record(m.sender, offer))
        return self._answer(m, "ack", now)

    def _on_offer_closed(self, w: Writer, m: Message, peer_key: str, now: int) -> Message:
        closing = m.entries["entry"]  # (believed: see _believable)
        if closed_hold(closing) != m.fields["offer"]:
            raise BadRequestRuleError("the entry does not close that offer")
        stored = w.record("offers", m.fields["offer"])
        # the news of the close may outrun the offer's (a retry, or an exchange at the peer
        # right after the offer): remember it closed, so the offer is not listed when it
        # comes; let go when no offer made then could still be open
        record = OfferRecord.closed_unseen(m.sender, closing.time + MAX_OFFER_MS) \
            if stored is None else OfferRecord.from_dict(stored)
        if record.validator == m.sender:
            put_record(w, "offers", m.fields["offer"], record.closed())
            if closing.kind == "settle":
                note_winner(self.bank, w, m.fields["offer"], closing)
        return self._answer(m, "ack", now)

    def _on_offer_filled(self, w: Writer, m: Message, peer_key: str, now: int) -> Message:
        """A peer's offer was filled in part: list what remains (the least we heard of)."""
        fill = m.entries["entry"]  # (believed: see _believable)
        try:
            filled = settled_by(fill.evidence_entry(0)) if fill.kind == "fill" else None
        except (IndexError, EncodingError, VerificationError):
            filled = None
        if filled != m.fields["offer"]:
            raise BadRequestRuleError("the entry is not a fill of that offer")
        self._our_take_as_kept(w, fill.evidence_entry(0))
        stored = w.record("offers", m.fields["offer"])
        record = None if stored is None else OfferRecord.from_dict(stored)
        if record is not None and record.validator == m.sender and record.is_open:
            if record.offer is not None:
                _check_fill_news(SignedEntry.trusted(record.offer), fill,
                                 int(m.fields["remaining"]))
            put_record(w, "offers", m.fields["offer"],
                       record.filled(int(m.fields["remaining"])))
            note_winner(self.bank, w, m.fields["offer"], fill)
        return self._answer(m, "ack", now)

    def _our_take_as_kept(self, r: Reader, take: SignedEntry) -> None:
        """A fill's take on a chain of ours is the very take we keep: the peer's key signs its
        fill, never our customer's entries (the ninth outside attacker had news of a fill of a
        take on alice's chain, signed by bank 2, listed)."""
        if take.chain is not None and r.state_bytes(take.chain) is not None and \
                r.entry(take.chain, take.height) != take.raw:
            raise BadRequestRuleError(f"the fill's take is on chain {take.chain}, registered at "
                                      f"{self.bank.name}, and is not the entry we keep there")

    def _on_take(self, w: Writer, m: Message, peer_key: str, now: int) -> Message:
        """We are the maker's bank: the first valid take settles the offer; later ones lose."""
        take, body = checked_take(m, peer_key)  # (believed: see _believable)
        self._not_ours(w, take)
        if body.validator != self.bank.name:
            raise BadRequestRuleError(f"the take is of an offer made at {body.validator}, "
                                      "not here")
        try:
            check_crossing(self.bank.name, m.sender, str(body.buy.asset))
        except ForeignAssetError as e:
            raise MisconductError.of(e) from e
        self._incoming(w, m.sender, str(body.sell.asset), body.sell.amount)
        stored = w.record("offers", body.offer)
        record = None if stored is None else OfferRecord.from_dict(stored)
        if record is None or record.validator != self.bank.name or record.offer is None:
            raise UnknownOfferError(f"offer {body.offer} was not made at {self.bank.name}")
        check_offer_open(body.offer, record, now)
        if now > m.fields["deadline"]:
            raise ExpiredError(f"the take's deadline {m.fields['deadline']} has passed")
        offer = SignedEntry.from_dict(record.offer)
        maker = self._state(w, offer.chain, body.offer)
        held = maker.holds.get(body.offer)
        if held is None:
            raise OfferClosedError(f"offer {body.offer} is no longer open")
        try:
            part = check_take(body, held) == "fill"
        except BadRequestRuleError as e:
            # terms its bank had to refuse its own customer, whatever it heard of our fills:
            # misconduct, shown with the offer (and, for a part below min_fill, attested
            # with what we say remained: tchain.proofs)
            raise MisconductError.of(BadRequestRuleError(
                e.message, offer=offer.raw.decode(), remaining=str(held.amount))) from e
        closes = window_closes(offer)
        if closes is not None and (now < closes or record.bids):  # validator/bids.py: the
            # best takes win; after the close, while they wait to be decided, it comes after
            keep_bid(w, body.offer, take, now, closes, deadline=m.fields["deadline"],
                     message=m.doc)
            return self._answer(m, "pending", now, reason=f"offer {body.offer} picks its best "
                                f"takes when its window closes at {closes}")
        settlement = self._commit(w, (fill_hold if part else settle_hold)(self.bank, maker,
                                                                          take, now))
        # the maker's sold amount crosses to the peer, what its taker gives crosses to us
        w.move(m.sender, Move(str(body.buy.asset), held=body.buy.amount))
        w.move(m.sender, Move(str(body.sell.asset), held=-body.sell.amount))
        deadline = now + self.ledger.settle_deadline_ms
        message = enqueue(w, self.bank.key, self.bank.name, m.sender, "settle", now, flow=take.id,
                          give_up=None, settlement=settlement)
        put_record(w, "flows", take.id, Flow.start(
            FlowType.EXCHANGE, chain=maker.chain, height=settlement.height, peer=m.sender,
            deadline=deadline, message=message, offer=offer.id, take=take.doc, answers=()))
        if part:
            fill_offer(self.bank.key, self.bank.name, w, settlement, now)
        else:
            close_offer(self.bank.key, self.bank.name, w, settlement, now)
        return self._answer(m, "take_accepted", now, settlement=settlement,
                            deadline=deadline)

    def _on_settle(self, w: Writer, m: Message, peer_key: str, now: int) -> Message:
        """We are the taker's bank: the maker's bank settled; settle our taker's side."""
        settlement = m.entries["settlement"]  # (believed: see _believable)
        evidence = [settlement.evidence_entry(i) for i in range(len(settlement.evidence))]
        if settlement.kind not in ("settle", "fill") or len(evidence) != 1 or \
                evidence[0].validator != self.bank.public_key or evidence[0].kind != "take":
            raise BadRequestRuleError("a settle message carries the maker's settlement of one "
                                      "of our takes")
        take_id = evidence[0].id
        if self.fault == "skip-settle":
            return self._answer(m, "pending", now,
                                reason="settlement of this take is in progress")
        ours = self._settle_take(w, take_id, settlement, now)
        return self._answer(m, "settled", now, settlement=ours)

    def _on_plan(self, w: Writer, m: Message, peer_key: str, now: int) -> Message:
        """A peer's log of a plan we take part in (validator.plans): appended where it is
        new, answered ``ack``; a document that does not fit is refused, signed, and nothing
        of the log is kept."""
        try:
            Plans(self.ledger).receive(w, m, now)
        except EncodingError:
            raise  # malformed: a plain 400, not kept (§11)
        except (BadRequestError, ForbiddenError, ConflictError) as e:
            raise RuleError(e.message, code=e.code, status=e.status) from e
        return self._answer(m, "ack", now)


# The entry each request carries whose intent (or itself, with none) is decided once here
# (a lock_status asks again: it decides nothing).
_CARRIED = {"transfer": "hold", "take": "take", "settle": "settlement", "claimed": "claim",
            "lock": "lock"}


def _subject(message: Message) -> tuple[str, str] | None:
    """What a request asks to be credited or settled once, whatever message carries it, and
    the entry that carries it: the customer's intent inside its hold or take (one debit,
    however many entries a dishonest bank wraps it in), or the settlement's id; as asked by
    this sender in this kind of message (attack 18: bank2's message carrying bank4's hold
    decided bank4's transfer of it, and a hold in a ``settle`` its transfer)."""
    field = _CARRIED.get(message.type)
    entry = None if field is None else message.entries.get(field)
    if entry is None:
        return None
    if message.type == "transfer" and is_routed(entry):
        return route_subject(entry, message.sender), entry.id
    asked = entry.id if entry.intent is None else entry.intent.id
    return sha256_hex(f"{message.type} {asked} from {message.sender}".encode()), entry.id


def _intent_time(message: Message) -> int | None:
    """When the customer signed the intent a transfer or take carries (a routed hold's: its
    payer's); None for a plan's hold (its log decides it once) or an entry with none."""
    entry = message.entries.get(_CARRIED[message.type]) \
        if message.type in ("transfer", "take") else None
    if entry is not None and message.type == "transfer" and is_routed(entry):
        try:
            entry = origin(entry)
        except MisconductError:
            return None  # (refused as one by the handler)
    if entry is None or entry.intent is None or isinstance(entry.intent.body, PlanBody):
        return None
    return entry.intent.time


def _not_too_old(message: Message, now: int) -> None:
    """A transfer or take of an intent signed more than MAX_INTENT_AGE_MS ago is refused:
    what we decided on it may have been let go.

    Raises:
        ExpiredError: it is.
    """
    signed = _intent_time(message)
    if signed is not None and now > signed + MAX_INTENT_AGE_MS:
        raise ExpiredError(f"the intent it carries was signed at {signed}, more than "
                           f"{MAX_INTENT_AGE_MS} ms ago (it is {now} here): too old to decide")


def _forget_at(message: Message, now: int) -> int:
    """When a refusal of ``message`` is let go: once the sender may no longer repeat it (or
    carry its hold in another), and not before the intent it carries is too old to decide
    (MAX_INTENT_AGE_MS); after that it is decided again, and refused again. (A deadline a
    peer sets far off keeps it no longer than a day: found by the outside attacker, whose
    refused messages named deadlines ten years out.)"""
    deadline: int = message.fields.get("deadline", 0)
    keep_until = min(max(message.time, deadline), now + MAX_DEADLINE_MS)
    signed = _intent_time(message)
    if signed is not None:
        keep_until = max(keep_until, min(signed, now) + MAX_INTENT_AGE_MS)
    return keep_until + CLOCK_MARGIN_MS + ANSWER_KEPT_MS



def _check_fill_news(offer: SignedEntry, fill: SignedEntry, remaining: int) -> None:
    """News of a part of a peer's offer filled is believed only if the fill could be that
    offer's: on its chain, and what the maker's chain verifier would take from what remained
    before it (tchain.state.filled_hold: the take's terms, the part out and its price in). The
    sixth outside attacker had a fill on another chain, and one paying less than the price,
    listed.

    Raises:
        BadRequestRuleError: it could not.
    """
    take = fill.evidence_entry(0)
    body = take.intent.body if take.intent is not None else None
    try:
        if fill.chain != offer.chain_id:
            raise VerificationError(f"the fill is on chain {fill.chain}, the offer on "
                                    f"{offer.chain_id}")
        if not isinstance(body, TakeBody):
            raise VerificationError("the fill's evidence is not a take")
        sells = offer_hold(offer).amount
        if remaining + body.buy.amount > sells:  # (a remaining of 10^37 was heard)
            raise VerificationError(f"{remaining} left after a fill of {body.buy.amount} is "
                                    f"more than the offer sells ({sells})")
        filled_hold(fill, take, {offer.id: offer_hold(offer, remaining + body.buy.amount)})
    except VerificationError as e:
        raise BadRequestRuleError(f"the news of a fill does not fit the offer: {e.message}"
                                  ) from e


_CLAIMS = {"transfer": checked_hold, "take": checked_take, "lock": checked_lock,
           "claimed": checked_claim}
_HANDLERS = {
    "transfer": PeerInbox._on_transfer,
    "offer": PeerInbox._on_offer,
    "offer_closed": PeerInbox._on_offer_closed,
    "offer_filled": PeerInbox._on_offer_filled,
    "take": PeerInbox._on_take,
    "settle": PeerInbox._on_settle,
    "lock": locks.on_lock,
    "claimed": locks.on_claimed,
    "lock_status": locks.on_lock_status,
    "plan": PeerInbox._on_plan,
}

