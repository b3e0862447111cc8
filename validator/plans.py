"""Execution plans at one bank (docs/protocol.md §14): proposing, consents, approvals, this
bank's instructions done in their turn, its word on the others', compensation; the plan's
log kept and passed on to every participant bank.

The core (tchain.plans) decides whether each signed document fits the plan; this module loads
the plan's log, asks, writes the entries and the longer log, and queues the log for the other
participants in the same write transaction (the outbox, docs/protocol.md §11), so a crash
loses none of them. Each bank sends the whole log as it has it, so a participant that missed a
document, or got them out of order, catches up from the next message it gets, and a repeat
changes nothing.

A transfer is the cross-bank transfer there always was (validator.flows, §11): its flow and
message start when its turn comes, the payee bank's first answer decides, and the settle or
release it ends with is this bank's completion (:meth:`Plans.hold_closed`).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from tchain.books import check_crossing
from tchain.digest import digest
from tchain.errors import (
    BadRequestError,
    BadRequestRuleError,
    ConflictError,
    EncodingError,
    ExpiredError,
    ForbiddenError,
    ForeignAssetError,
    InsufficientFundsError,
    KycRequiredError,
    LimitExceededError,
    NotFoundError,
    RuleError,
    SignatureError,
    StaleTimeError,
    UnknownAssetError,
    UnknownChainError,
)
from tchain.flow_states import FlowType
from tchain.intents import sign_intent
from tchain.messages import Message
from tchain.model import PlanBody, SignedEntry, SignedIntent
from tchain.plans import (
    Execution,
    Instruction,
    LogDoc,
    Plan,
    consent_body,
    plan_document,
    plan_id,
    sign_log,
)
from tchain.plans.admission import check_words
from tchain.plans.confirmation import abort, abort_past_due, confirmation, waits_for_confirmations
from tchain.plans.equivocation import plan_equivocation_proof, question
from tchain.plans.execution import ZERO_COMPLETION, owed
from tchain.plans.merge import append_what_fits
from tchain.plans.proof import plan_default_proof
from tchain.plans.receipts import issue_memo
from tchain.plans.timing import check_dated, check_fresh, counts_until
from tchain.proofs import verify_proof
from tchain.records import KeyRecord, make_record
from tchain.rules import (
    TIME_WINDOW_MS,
    Outcome,
    credit_transfer,
    decide,
    hold_for_plan,
    release_hold,
    settle_hold,
)
from tchain.state import ChainState
from validator.flows import enqueue, signer, start_held_flow
from validator.ledger import Ledger
from validator.store import Reader, Writer

__all__ = ["MAX_LISTED", "MAX_LOG", "MAX_LOG_BYTES", "Kept", "Plans", "plan_key", "summary_of"]

MAX_LOG = 1000  # documents in one plan message: every log fits (tchain.plans.bounds)
# bytes of one plan's log: with its message's envelope, within a peer's body limit
# (validator.app.MAX_BODY, 1 MiB) and alone in a batch (validator.sender.BATCH_BYTES)
MAX_LOG_BYTES = 1_000_000
MAX_LISTED = 100  # plan records read for one page of GET /v1/plans
MAX_OPEN = 50  # plans not yet over that one customer proposed, or one peer's customers did
_HOLD_FAILURES = (InsufficientFundsError, UnknownAssetError, LimitExceededError,
                  SignatureError)  # what a customer's chain refuses: a reversible failure
_RUNNING = frozenset({"approved", "executing"})
_OPEN = _RUNNING | {"proposed", "compensating"}
_UNDOING = frozenset({"compensating", "failed"})


def plan_key(plan: str) -> str:
    """The record id a plan is kept under: its id's SHA-256 (record ids are 32 bytes)."""
    return hashlib.sha256(plan.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Kept:
    """A plan as this bank keeps it: its log, its own customers' consents to their holds (by
    hold seq) that reached it before it approved (they go out inside its approval), and the
    plan's transfers it credited as their payee bank (seq -> our credit's id): its first word
    on those, so its clock never calls them late afterwards (docs/adr/0011)."""

    log: tuple[LogDoc, ...]
    consents: dict[int, SignedIntent]
    credited: dict[int, str] = field(default_factory=dict)
    summary: dict[str, Any] | None = None  # what a listing shows (summary_of), kept with it
    reminded: dict[str, int] = field(default_factory=dict)  # peer -> log length (remind)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "log": [d.doc for d in self.log],
            "consents": {str(s): c.doc for s, c in sorted(self.consents.items())}}
        if self.credited:
            out["credited"] = {str(s): c for s, c in sorted(self.credited.items())}
        if self.summary is not None:
            out["summary"] = self.summary
        if self.reminded:
            out["reminded"] = dict(sorted(self.reminded.items()))
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Kept:
        return cls(tuple(LogDoc.from_dict(x) for x in d["log"]),
                   {int(s): SignedIntent.from_dict(x) for s, x in d["consents"].items()},
                   {int(s): c for s, c in d.get("credited", {}).items()}, d.get("summary"),
                   dict(d.get("reminded", {})))


def summary_of(execution: Execution) -> dict[str, Any]:
    """What ``GET /v1/plans`` shows of a plan, and who may read it: kept with its log each
    time the log grows, so a listing replays nothing."""
    plan = execution.plan
    return {"id": plan.id, "state": execution.state, "proposer": plan.proposer,
            "banks": list(plan.banks), "named": list(plan.named()),
            "counts_until": counts_until(plan)}


class Plans:
    """The plans this bank takes part in."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.bank = ledger.bank

    # --- reads ---------------------------------------------------------------------------

    def keys(self, r: Reader) -> dict[str, str]:
        """The banks' keys a plan's log is checked with: ours and our pinned peers'."""
        return {self.bank.name: self.bank.public_key,
                **{p["name"]: p["key"] for p in r.peers()}}

    def _kept(self, r: Reader, plan: str) -> Kept | None:
        record = r.record("plans", plan_key(plan))
        return None if record is None else Kept.from_dict(record)

    def execution(self, r: Reader, plan: str) -> Execution:
        kept = self._kept(r, plan)
        if kept is None:
            raise NotFoundError(f"plan {plan} is not known at {self.bank.name}")
        return Execution.replay(kept.log, self.keys(r))

    def readable(self, r: Reader, plan: str, key: str) -> Execution:
        """The plan's execution, if ``key`` may read it: a regulator, a participant bank, or
        the owner of a chain here that the plan names (proposer, account or payee).

        Raises:
            NotFoundError: no such plan here. ForbiddenError: not for this key.
        """
        execution = self.execution(r, plan)
        if not self._may_read(r, summary_of(execution), key):
            raise ForbiddenError(f"key {key} may not read plan {plan}: only the customers it "
                                 "names, its banks and the bank's regulators may")
        return execution

    def _may_read(self, r: Reader, summary: dict[str, Any], key: str) -> bool:
        if r.is_regulator(key) or any(p["key"] == key and p["name"] in summary["banks"]
                                      for p in r.peers()):
            return True
        chain = r.chain_by_owner(key)
        state = None if chain is None else r.state(chain)
        return state is not None and state.owner == key and state.address in summary["named"]

    def listed(self, key: str, after: str | None = None, limit: int = MAX_LISTED
               ) -> tuple[list[dict[str, Any]], str | None]:
        """A page of the plans ``key`` may read here (id, state and proposer of each), from
        their kept summaries, among up to ``limit`` plan records from after ``after``; and
        where the next page starts, if there may be one."""
        with self.ledger.store.read() as r:
            page = r.records_page("plans", after, limit)
            out = []
            for summary in self._summaries(r, page):
                if self._may_read(r, summary, key):
                    out.append({k: summary[k] for k in ("id", "state", "proposer")})
            return out, (page[-1][0] if len(page) == limit else None)

    def states(self) -> Counter[str]:
        """How many plans are kept here in each state (for /metrics)."""
        with self.ledger.store.read() as r:
            return Counter(s["state"] for s in self._summaries(r, r.records("plans")))

    def _summaries(self, r: Reader, records: list[tuple[str, dict[str, Any]]]
                   ) -> list[dict[str, Any]]:
        """The summaries of the plans among ``records`` (the others index holds); a plan
        kept before summaries were is replayed once to make its own."""
        return [record.get("summary") or summary_of(Execution.replay(
                    Kept.from_dict(record).log, self.keys(r)))
                for _, record in records if "log" in record]

    # --- what customers ask -----------------------------------------------------------------

    def propose(self, owner_key: str, plan_file: Any) -> tuple[Execution, list[str]]:
        """A customer of this bank proposes a plan (the plan file as JSON): this bank names
        it, signs the proposal and sends it to every other participant.

        Raises:
            ForbiddenError: the key owns no chain here; EncodingError: the file is no plan;
            BadRequestError: this bank is not a contributor; ForbiddenError: a bank of the
            plan is not pinned here.
        """
        now = self.ledger.clock()

        def work(w: Writer) -> tuple[Execution, list[str]]:
            chain = w.chain_by_owner(owner_key)
            state = None if chain is None else w.state(chain)
            if state is None or state.owner != owner_key:
                raise ForbiddenError(f"key {owner_key} owns no chain at {self.bank.name}: a "
                                     "plan is proposed by a customer of a contributing bank")
            doc = plan_document(plan_file, plan_id_=plan_id(self.bank.name),
                                proposer=state.address, time=now, confirm=True)
            plan = Plan.from_dict(doc)
            check_fresh(plan, now)
            self._check_open(w, lambda s: s["proposer"] == plan.proposer, plan.proposer, now)
            proposal = sign_log(self.bank.key, "proposal", plan=plan.id,
                                plan_digest=plan.digest, by=self.bank.name, time=now,
                                document=plan.doc)
            execution = Execution.start(proposal, self.keys(w))
            return self._decided(w, execution, Kept((), {}), now)

        return self.ledger.store.write(work)

    def consent(self, plan: str, doc: Any) -> tuple[Execution, list[str]]:
        """A customer's signed consents to their holds in a plan (``{"consents": [signed plan
        intents]}``), at their own bank: kept, and once every hold here has its consent,
        this bank approves.

        Raises:
            NotFoundError: the plan is not known here (yet); UnknownChainError: the signer is
            not a customer here; BadRequestError: a consent to anything but a hold of theirs
            in this plan; SignatureError: not signed by the chain's owner; StaleTimeError.
        """
        if not isinstance(doc, dict) or set(doc) != {"consents"} or \
                not isinstance(doc["consents"], list) or not 1 <= len(doc["consents"]) <= 100:
            raise BadRequestError('consents are sent as {"consents": [signed plan intents]}')
        consents = [SignedIntent.from_dict(c) for c in doc["consents"]]
        now = self.ledger.clock()

        def work(w: Writer) -> tuple[Execution, list[str]]:
            kept = self._kept(w, plan)
            if kept is None:
                raise NotFoundError(f"plan {plan} is not known at {self.bank.name}")
            execution = Execution.replay(kept.log, self.keys(w))
            mine = dict(kept.consents)
            for consent in consents:
                seq = self._check_consent(w, execution.plan, consent, now)
                mine[seq] = consent
            if self.bank.name in execution.approvals or execution.rejection is not None:
                return execution, []  # decided already: a consent again changes nothing
            return self._decided(w, execution, replace(kept, consents=mine), now)

        return self.ledger.store.write(work)

    def _check_consent(self, r: Reader, plan: Plan, consent: SignedIntent, now: int) -> int:
        """The hold seq a customer's consent is to, checked: a plan intent of a chain here,
        signed by its owner, lately, saying exactly what the plan says of that hold."""
        if consent.type != "plan" or consent.seq != 0:
            raise BadRequestError(f"a consent is a plan intent with seq 0, got a "
                                  f"{consent.type} with seq {consent.seq}")
        body = consent.doc["intent"]["body"]
        seq = body.get("hold")
        holds = {i.seq: i for i in plan.holds(self.bank.name)}
        if seq not in holds or body != consent_body(plan, seq):
            raise BadRequestError(f"the consent is not to a hold of plan {plan.id} at "
                                  f"{self.bank.name}, as the plan says it")
        state = None if consent.chain is None else r.state(consent.chain)
        if state is None or state.address != holds[seq].account:
            raise UnknownChainError(f"hold {seq} is {holds[seq].account}'s, and the consent "
                                    f"is of chain {consent.chain}")
        consent.verify(state.owner)
        if abs(consent.time - now) > TIME_WINDOW_MS:
            raise StaleTimeError(f"the consent's time {consent.time} is more than "
                                 f"{TIME_WINDOW_MS} ms from {now}", validator_time=now)
        return int(seq)

    def _check_open(self, r: Reader, theirs: Callable[[dict[str, Any]], bool], who: str,
                    now: int) -> None:
        """A customer, or a peer's customers, may have at most MAX_OPEN plans here that are
        not over (each is kept, and may hold funds): a flood of proposals is refused.

        Raises:
            LimitExceededError: ``who`` has that many already.
        """
        # a wedged plan stops counting (tchain.plans.timing.counts_until)
        open_ = sum(1 for s in self._summaries(r, r.records("plans"))
                    if s["state"] in _OPEN and now <= s.get("counts_until", now) and theirs(s))
        if open_ >= MAX_OPEN:
            raise LimitExceededError(f"{who} has {open_} plans open at {self.bank.name}, the "
                                     f"most one may (MAX_OPEN {MAX_OPEN})")

    # --- what peers send -------------------------------------------------------------------

    def receive(self, w: Writer, message: Message, now: int) -> None:
        """A peer's ``plan`` message: its log, appended to ours where it is new; then this
        bank's own word and acts where they are due.

        Raises:
            EncodingError, BadRequestError, SignatureError, ForbiddenError, ConflictError:
            a document does not fit the plan (nothing is written); MisconductError: one is
            dated or coded as no honest bank signs it (tchain.plans.admission).
        """
        docs = message.fields["log"]
        if not isinstance(docs, list) or not 1 <= len(docs) <= MAX_LOG:
            raise EncodingError(f"a plan message carries the plan's log, 1..{MAX_LOG} "
                                "documents")
        theirs = [LogDoc.from_dict(d) for d in docs]
        kept = self._kept(w, theirs[0].plan)
        execution = Execution.replay(kept.log if kept else theirs[:1], self.keys(w))
        if kept is None:
            check_fresh(execution.plan, now)
            self._check_open(w, lambda s: s["id"].startswith(f"{execution.plan.bank}/"),
                             f"{execution.plan.bank}'s customers", now)
        check_dated(theirs, now)
        if message.sender not in execution.plan.banks or \
                self.bank.name not in execution.plan.banks:
            raise ForbiddenError(f"{message.sender} sent plan {execution.plan.id}, which "
                                 f"does not name both it and {self.bank.name}")
        log = execution.docs
        execution, twice, conflict = append_what_fits(execution, theirs)
        # after the checks of each document (a forgery is refused as one), before a conflict
        check_words(execution.plan, theirs, log)
        size = sum(len(d.raw) for d in execution.docs)
        if size > MAX_LOG_BYTES:  # never hold a log we could not send (tchain.plans.bounds)
            raise LimitExceededError(f"plan {execution.plan.id}'s log would be {size} bytes, "
                                     f"more than one message carries ({MAX_LOG_BYTES})")
        proven = any([self._keep_equivocation(w, execution, *pair) for pair in twice])
        if conflict is not None and not proven:
            raise conflict  # nothing new: a lone lie, answered as one
        _, sent = self._decided(w, execution, kept or Kept((), {}), now)
        if (self._keep_contradictions(w, execution) or proven) and not sent:
            self._send(w, execution, now)  # its culprit may have told each bank one word

    def _keep_equivocation(self, w: Writer, execution: Execution, first: LogDoc,
                           second: LogDoc) -> bool:
        """Keep, once per bank and question, the proof that it answered it twice, differently
        (both words are in the log, and end the plan alike everywhere: docs/adr/0014).
        Whether it is new."""
        key = plan_key(f"{execution.plan.id} equivocation {first.by} {question(first)}")
        if first.by == self.bank.name or w.record("proofs", key) is not None:
            # our own key signed both (it leaked, or a test speaks as us): no proof against
            # ourselves, and the log is taken all the same
            return False
        proof = plan_equivocation_proof(self.bank.key, self.bank.name, execution, first, second)
        verify_proof(proof)
        w.put_record("proofs", key, proof)
        return True

    def _keep_contradictions(self, w: Writer, execution: Execution) -> bool:
        """Keep, once per transfer, the proof that its payee bank both credited it and said
        nothing came (the plan failed on that word: docs/adr/0012). Whether one is new."""
        new = False
        for ins in execution.plan.instructions:
            st = execution.instructions[ins.seq]
            if ins.op != "transfer" or ins.lands_at in (None, ins.bank, self.bank.name) or \
                    st.completion is None or st.completion.body["status"] != "done" or \
                    ins.lands_at not in st.rejections:
                continue
            key = plan_key(f"{execution.plan.id} contradiction {ins.seq}")
            if w.record("proofs", key) is None:
                proof = plan_default_proof(self.bank.key, self.bank.name, execution, ins.seq,
                                           ins.lands_at, "plan_contradiction")
                verify_proof(proof)
                w.put_record("proofs", key, proof)
                new = True
        return new

    def hold_closed(self, w: Writer, hold_id: str, entry: SignedEntry, now: int) -> list[str]:
        """The transfer of a plan's hold ended (the payee bank's first answer): ``entry`` is
        our settle (done) or release (refused). Logged as the transfer's completion."""
        index = w.record("plans", hold_id)
        if index is None:
            return []  # a payment's hold, not a plan's
        kept = self._kept(w, index["plan"])
        assert kept is not None
        execution = Execution.replay(kept.log, self.keys(w))
        transfer = execution.plan.closer(index["hold"])
        if execution.instructions[transfer.seq].completion is not None:
            return []
        done = entry.kind == "settle"
        if not done and transfer.lands_at not in execution.instructions[transfer.seq].rejections:
            # refused: the payee bank's word that it never credits it (in its log, on its way)
            # is what the failed completion stands on; it is logged once that word is here
            w.put_record("plans", hold_id, {**index, "released": entry.doc})
            return []
        completion = self._sign(execution, "completion", now, seq=transfer.seq,
                                status="done" if done else "failed", receipts=[entry],
                                error=None if done else "refused")
        return self._decided(w, execution.append(completion), kept, now)[1]

    def payee_turn(self, w: Writer, hold: SignedEntry, now: int) -> str | None:
        """Before we credit a plan's transfer as its payee bank: our own log must show the
        plan approved and the transfer due (every instruction before it complete), and not
        past its due by our clock. Returns why we wait, when our log lacks only the other
        banks' words on what came before (on their way: the payer bank asks again), or None
        when we may credit.

        Only our log shows the lie, so no misconduct proof is kept (one must show it from the
        message alone, tchain.proofs); the refusal is kept, and its bank releases the hold.

        Raises:
            ConflictError: the payer bank moved the hold before our own words could make it
            due (we did not approve the plan, or an instruction before it), or the plan is
            over; BadRequestRuleError: the hold or its consent is not the one the log shows;
            ExpiredError: we said (now, or before) that it came late, our first word, so we
            never credit it.
        """
        me = self.bank.name
        assert hold.intent is not None and isinstance(hold.intent.body, PlanBody)
        body = hold.intent.body
        kept = self._kept(w, body.plan)
        if kept is None:
            raise ConflictError(f"plan {body.plan} is not known at {me}: none of its "
                                "transfers is due")
        execution = Execution.replay(kept.log, self.keys(w))
        plan = execution.plan
        holds = {i.seq for i in plan.holds()}
        if body.hold not in holds or hold.intent.doc["intent"]["body"] != consent_body(
                plan, body.hold):
            raise BadRequestRuleError(f"the hold's consent is not to a hold of plan {plan.id} "
                                      "as the plan says it")
        ins = plan.closer(body.hold)
        if me in execution.instructions[ins.seq].rejections:
            raise ExpiredError(f"{me} said transfer {ins.seq} of plan {plan.id} came too late: "
                               "it never credits it")
        if execution.turn() != ins:
            if execution.state not in _RUNNING | {"proposed"}:
                raise ConflictError(f"plan {plan.id} is {execution.state} at {me}")
            missing = self._not_said(execution, ins)
            if missing:
                raise ConflictError(f"transfer {ins.seq} of plan {plan.id} cannot be due: "
                                    f"{me} has not approved {missing}")
            return (f"transfer {ins.seq} of plan {plan.id} waits for the other banks' words "
                    f"on what comes before it")
        if waits_for_confirmations(execution, ins):
            return (f"transfer {ins.seq} of plan {plan.id} waits for every contributor's "
                    "confirmation")
        logged = execution.hold_entry(body.hold)
        if logged is None or logged.id != hold.id:
            raise BadRequestRuleError(f"the hold is not the one plan {plan.id}'s log shows "
                                      f"for instruction {body.hold}")
        due = execution.due()
        assert due is not None
        if now > due:
            self._say_late(w, execution, kept, now)
            raise ExpiredError(f"transfer {ins.seq} of plan {plan.id} was due at {due} (it is "
                               f"{now} here): {me} never credits it")
        return None

    def say_late_with(self, w: Writer, hold: SignedEntry, now: int) -> None:
        """We refuse a plan's transfer of ``hold`` as past its message's deadline: if our log
        shows it due and past due, our word that it came late is logged with the refusal
        (as :meth:`payee_turn` does), so the payer bank's failed completion follows at once
        rather than at our next tick; otherwise our tick says it when our log gets there."""
        with contextlib.suppress(ConflictError, BadRequestRuleError, ExpiredError):
            self.payee_turn(w, hold, now)  # refused as expired all the same: the caller says so

    def _not_said(self, execution: Execution, ins: Instruction) -> str | None:
        """What we have not approved (or done) of what must be complete before ``ins``."""
        me = self.bank.name
        if me not in execution.approvals:
            return "the plan"
        for seq in range(1, ins.seq):
            st, bank = execution.instructions[seq], execution.plan.instruction(seq).bank
            if st.completion is None or (bank != me and me not in st.approvals):
                return f"instruction {seq}"
        return None

    def remind(self, w: Writer, hold_id: str, peer: str, now: int) -> None:
        """The payee bank ``peer`` answered our plan's transfer of hold ``hold_id``
        ``pending``: its log lacks words that ours has (a bank may have told them to us
        alone, docs/adr/0014). Send it our log, once each time the log grew, so it catches up
        and decides in time."""
        index = w.record("plans", hold_id)
        record_id = None if index is None else plan_key(index["plan"])
        record = None if record_id is None else w.record("plans", record_id)
        if record_id is None or record is None:
            return
        kept = Kept.from_dict(record)
        if kept.reminded.get(peer) == len(kept.log):
            return
        enqueue(w, self.bank.key, self.bank.name, peer, "plan", now, flow=None, give_up=None,
                log=[d.doc for d in kept.log])
        w.put_record("plans", record_id, replace(
            kept, reminded={**kept.reminded, peer: len(kept.log)}).to_dict())

    def credited(self, w: Writer, hold: SignedEntry, credit: SignedEntry) -> None:
        """Keep that we credited the transfer of ``hold`` (a plan's): our first word on it,
        so our clock never says afterwards that it came late."""
        assert hold.intent is not None and isinstance(hold.intent.body, PlanBody)
        body = hold.intent.body
        kept = self._kept(w, body.plan)
        assert kept is not None, "payee_turn found it"
        seq = Plan.from_dict(kept.log[0].body["document"]).closer(body.hold).seq
        w.put_record("plans", plan_key(body.plan),
                     replace(kept, credited={**kept.credited, seq: credit.id}).to_dict())

    def tick(self) -> list[str]:
        """The clock's part: a plan never approved by its deadline is rejected; an
        instruction of another bank not done when it was due is refused (``expired``), by
        this bank's clock, once: its first word on it is final; an await of ours whose time
        came is done. Returns what it did."""
        now = self.ledger.clock()
        with self.ledger.store.read() as r:
            if not r.due("plans", now):  # what is due costs, not every plan ever kept
                return []

        def work(w: Writer) -> list[str]:
            done = []
            for record_id, at in w.due("plans", now):
                w.clear_due("plans", record_id, at)
                record = w.record("plans", record_id)
                if record is None:
                    continue
                kept = Kept.from_dict(record)
                execution = Execution.replay(kept.log, self.keys(w))
                said = self._say_late(w, execution, kept, now)
                if said is not None:
                    done.append(f"plan {execution.plan.id}: {said}")
            return done

        return self.ledger.store.write(work)

    def _say_late(self, w: Writer, execution: Execution, kept: Kept, now: int) -> str | None:
        """Log our word on a plan whose time passed, if we owe one (and keep the proof of a
        default where nothing came); then our acts that follow. Returns what we said."""
        word = self._late(execution, kept, now)
        if word is not None:
            turn = execution.turn()
            execution = execution.append(word)
            if turn is not None and not turn.reversible and \
                    execution.instructions[turn.seq].completion is None:
                self._keep_proof(w, execution, turn.seq)
        self._decided(w, execution, kept, now)
        return None if word is None else f"{word.type} ({word.body.get('reason')})"

    def _keep_proof(self, w: Writer, execution: Execution, seq: int) -> None:
        """Keep the proof that a bank did not do its irreversible instruction ``seq``: the
        log up to our word that nothing came by when it was due (tchain.plans.proof)."""
        proof = plan_default_proof(self.bank.key, self.bank.name, execution, seq)
        verify_proof(proof)
        w.put_record("proofs", digest("proof", proof).hex(), proof)

    def _wake(self, execution: Execution, now: int) -> int | None:
        """When this bank must next look at the plan by its clock alone: its deadline while
        it waits for approvals, the current instruction's due, our await's time."""
        if execution.plan.role(self.bank.name) != "contributor":
            return None
        if execution.state == "proposed":
            return execution.plan.deadline + 1
        turn, due = execution.turn(), execution.due()
        if turn is None or due is None or self.bank.name in execution.instructions[
                turn.seq].rejections:
            return None  # nothing more by our clock: we said it came late
        if turn.op == "await" and turn.until is not None and now < turn.until:
            return turn.until  # ours to do, or another's to approve, then
        return due + 1

    def _late(self, execution: Execution, kept: Kept, now: int) -> LogDoc | None:
        """This bank's word on a plan whose time passed, if it owes one. Of a transfer, only
        its payee bank says it came late, and never once it credited it (docs/adr/0011)."""
        plan, me = execution.plan, self.bank.name
        if plan.role(me) != "contributor":
            return None
        if execution.state == "proposed" and now > plan.deadline and me not in execution.approvals:
            return self._sign(execution, "rejection", now, error="expired",
                              reason=f"not approved by its deadline {plan.deadline}")
        turn, due = execution.turn(), execution.due()
        if turn is None or due is None or now <= due or turn.bank == me or \
                waits_for_confirmations(execution, turn):
            return None  # ours to do; or its bank aborts it: docs/adr/0014
        st = execution.instructions[turn.seq]
        if me in st.approvals | st.rejections or \
                (st.completion is not None and not turn.reversible):
            return None  # a transfer done late is done all the same: it is approved
        if turn.lands_at not in (None, me) or turn.seq in kept.credited:
            return None  # its payee bank decides; we credited it: in time
        return self._sign(execution, "completion_rejection", now, seq=turn.seq,
                          completion=st.completion.id if st.completion else ZERO_COMPLETION,
                          error="expired", reason=f"instruction {turn.seq} was due at {due}")

    # --- this bank's own word and acts ----------------------------------------------------

    def _decided(self, w: Writer, execution: Execution, kept: Kept, now: int
                 ) -> tuple[Execution, list[str]]:
        """Add this bank's own word and acts where they are due, keep the log, and send it
        on if this bank added to it. Returns the execution and the ids of the messages
        queued."""
        sent = len(kept.log)
        while (mine := self._due(w, execution, kept, now)) is not None:
            execution = execution.append(mine)
        key = plan_key(execution.plan.id)
        w.put_record("plans", key, replace(kept, log=execution.docs,
                                           summary=summary_of(execution)).to_dict())
        wake = self._wake(execution, now)
        if wake is not None:
            w.set_due("plans", key, wake)
        if not any(d.by == self.bank.name for d in execution.docs[sent:]):
            return execution, []  # nothing of ours: each bank sends its own word to all
        return execution, self._send(w, execution, now)

    def _due(self, w: Writer, execution: Execution, kept: Kept, now: int) -> LogDoc | None:
        """The next document of ours the plan calls for now, if any (doing what it says)."""
        plan, me = execution.plan, self.bank.name
        if plan.role(me) != "contributor":
            return None
        if execution.state == "proposed":
            return self._approval(w, execution, kept, now)
        refused = self._refused(w, execution, now)
        if refused is not None:
            return refused
        word = abort(execution, me, now, self._sign)
        if word is not None:
            return word
        if execution.state in _UNDOING or execution.may_void(me):
            return self._compensation(w, execution, now)
        word = confirmation(execution, me, now, self._sign)
        if word is not None:
            return word
        turn = execution.turn()
        if turn is None:
            return None
        st = execution.instructions[turn.seq]
        if turn.bank != me:
            if st.completion is None or me in st.approvals or \
                    (me in st.rejections and not owed(turn)):
                return None
            if turn.op == "await" and turn.until is not None and now < turn.until:
                return None  # its time has not come here: approved once it has
            return self._late(execution, kept, now) or self._sign(
                execution, "completion_approval", now, seq=turn.seq,
                completion=st.completion.id)
        if st.completion is not None or st.rejections:
            return None
        return self._do(w, execution, turn.seq, now)

    def _do(self, w: Writer, execution: Execution, seq: int, now: int) -> LogDoc | None:
        """Do our instruction ``seq``: its completion, or None while it waits (a transfer's
        payee bank, an await's time)."""
        ins = execution.plan.instruction(seq)
        if ins == execution.first_irreversible and not execution.confirmed:
            return abort_past_due(execution, now, self._sign)  # or wait for them
        if ins.op == "await":
            if ins.until is not None and now < ins.until:
                return None
            return self._sign(execution, "completion", now, seq=seq, status="done",
                              receipts=[], error=None)
        if ins.op == "hold":
            assert ins.account is not None
            chain = execution.chains[ins.account]
            try:
                outcome = hold_for_plan(self.bank, self._state(w, chain),
                                        execution.consents[seq], now)
            except _HOLD_FAILURES as e:
                return self._sign(execution, "completion", now, seq=seq, status="failed",
                                  receipts=[], error=e.code)
            entry = _written(w, outcome)
            w.put_record("plans", entry.id, {"plan": execution.plan.id, "hold": seq})
            return self._sign(execution, "completion", now, seq=seq, status="done",
                              receipts=[entry], error=None)
        if ins.op == "issue":
            return self._issue(w, execution, ins, now)
        hold = execution.hold_entry(ins.hold or 0)
        assert hold is not None and hold.chain is not None
        if ins.op == "release":
            entry = self._release(w, hold, now)
            return self._sign(execution, "completion", now, seq=seq, status="done",
                              receipts=[entry], error=None)
        if ins.op == "transfer" and ins.lands_at == self.bank.name:
            return self._transfer_here(w, execution, ins, hold, now)
        if ins.op == "transfer" and w.record("flows", hold.id) is None:
            assert ins.to is not None
            state = self._state(w, hold.chain, hold.id)
            # its deadline is the plan's for it, not our settle deadline: a cut shorter than
            # the plan allows must not make the payee bank refuse it, and the plan fail
            due = execution.due()
            start_held_flow(self.bank.key, self.bank.name, w, FlowType.TRANSFER,
                            ins.to.rpartition("*")[2], hold, state,
                            max(due or 0, now + self.ledger.settle_deadline_ms), now, now,
                            extra={"payee": execution.chains[ins.to]}, hold=hold,
                            payer=signer(self.bank.key, self.bank.name, state),
                            kyc_required=bool(state.params.get("kyc_recipients")))
        return None  # the payee bank's answer completes it (hold_closed)

    def _refused(self, w: Writer, execution: Execution, now: int) -> LogDoc | None:
        """Our failed completion of a transfer its payee bank refused, once the payee bank's
        word that it never credits it is in our log (hold_closed kept the release till then)."""
        for ins in execution.plan.instructions:
            st = execution.instructions[ins.seq]
            hold = execution.hold_entry(ins.hold or 0) if ins.op == "transfer" else None
            if hold is None or ins.bank != self.bank.name or st.completion is not None or \
                    ins.lands_at not in st.rejections:
                continue
            index = w.record("plans", hold.id)
            if index is not None and "released" in index:
                return self._sign(execution, "completion", now, seq=ins.seq, status="failed",
                                  receipts=[SignedEntry.from_dict(index["released"])],
                                  error="refused")
        return None

    def _compensation(self, w: Writer, execution: Execution, now: int) -> LogDoc | None:
        """Release our holds that stand and that nothing was paid from yet; once none of
        ours is in flight, say so (with the releases), once."""
        me = self.bank.name
        if me in execution.compensations:
            return None
        standing = [(i, execution.hold_entry(i.seq)) for i in execution.standing(me)]
        if any(w.record("flows", e.id) is not None for _, e in standing if e is not None):
            return None  # a transfer in flight: the payee bank's first answer decides it
        releases = [self._release(w, e, now) for _, e in standing if e is not None]
        if not releases and me not in execution.holding_banks:
            return None
        return self._sign(execution, "compensation", now, receipts=releases)

    def _transfer_here(self, w: Writer, execution: Execution, ins: Instruction,
                       hold: SignedEntry, now: int) -> LogDoc:
        """A transfer between two customers of this bank: the payee's credit and the hold's
        settle in this one write, as an intra-bank payment is. We are its payee bank, so our
        clock alone says whether it came late; then, or if the payee may not be paid, the
        hold is released, and that is the completion (failed, with its code)."""
        assert ins.to is not None and hold.chain is not None
        due = execution.due()
        payer = self._state(w, hold.chain, hold.id)
        try:
            if due is not None and now > due:
                raise ExpiredError(f"transfer {ins.seq} was due at {due}; it is {now} here")
            credit = _written(w, credit_transfer(
                self.bank, self._state(w, execution.chains[ins.to]), hold, now,
                kyc_required=bool(payer.params.get("kyc_recipients"))))
        except (ExpiredError, KycRequiredError, UnknownChainError) as e:
            return self._sign(execution, "completion", now, seq=ins.seq, status="failed",
                              receipts=[self._release(w, hold, now)], error=e.code)
        settle = _written(w, settle_hold(self.bank, self._state(w, hold.chain, hold.id),
                                         credit, now))
        return self._sign(execution, "completion", now, seq=ins.seq, status="done",
                          receipts=[settle], error=None)

    def _issue(self, w: Writer, execution: Execution, ins: Instruction, now: int) -> LogDoc:
        """Issue our IOU to a customer of ours, as a deposit does (the issue on our own chain,
        the payee's credit, in one write), its memo naming the plan and the instruction. It
        lands here, so our clock alone says whether it is late: then nothing is issued (a
        failed completion, ``expired``), as when the chain's rules refuse it (its code)."""
        assert ins.account is not None and ins.to is not None
        due = execution.due()
        ours = self._state(w, execution.chains[ins.account])
        payee = execution.chains[ins.to]
        body = {"to": payee, "to_validator": self.bank.name,
                "asset": ins.asset, "amount": str(ins.amount),
                "memo": issue_memo(execution.plan, ins.seq)}
        try:
            if due is not None and now > due:
                raise ExpiredError(f"issue {ins.seq} was due at {due}; it is {now} here")
            intent = SignedIntent.from_dict(sign_intent(self.bank.key, "issue", ours.chain,
                                                        ours.seq + 1, now, body))
            outcome = decide(self.bank, intent, ours, self._state(w, payee), now)
        except RuleError as e:
            return self._sign(execution, "completion", now, seq=ins.seq, status="failed",
                              receipts=[], error=e.code)
        return self._sign(execution, "completion", now, seq=ins.seq, status="done",
                          receipts=[_written(w, outcome)], error=None)

    def _release(self, w: Writer, hold: SignedEntry, now: int) -> SignedEntry:
        assert hold.chain is not None
        return _written(w, release_hold(self.bank, self._state(w, hold.chain, hold.id), hold,
                                        now))

    def _state(self, r: Reader, chain: str, hold: str | None = None) -> ChainState:
        state = r.state(chain, () if hold is None else (hold,))
        if state is None:
            raise UnknownChainError(f"chain {chain} is not registered at {self.bank.name}")
        return state

    def _approval(self, w: Writer, execution: Execution, kept: Kept, now: int
                  ) -> LogDoc | None:
        """Our approval (or rejection) of the plan, once our customers consented."""
        plan = execution.plan
        if execution.rejection is not None or self.bank.name in execution.approvals:
            return None
        why = self._cannot(w, plan)
        if why is not None:
            return self._sign(execution, "rejection", now, error=why[0], reason=why[1])
        holds = [i.seq for i in plan.holds(self.bank.name)]
        if any(s not in kept.consents for s in holds):
            return None
        return self._sign(execution, "approval", now,
                          consents=[kept.consents[s] for s in holds],
                          records=[self._record(w, a) for a in plan.named(self.bank.name)])

    def _cannot(self, r: Reader, plan: Plan) -> tuple[str, str] | None:
        """Why this bank cannot do its part of the plan, if it cannot: a customer it does
        not have, a transfer between it and a peer of a third bank's IOU (its peer would take
        it for misconduct, §13), or what this version does not do (docs/adr/0010)."""
        missing = [a for a in plan.named(self.bank.name)
                   if self.ledger.chain_of_address(r, a) is None]
        if missing:
            return (UnknownChainError.code,
                    f"{', '.join(missing)} are not customers of {self.bank.name}")
        for ins in plan.instructions:
            if ins.op == "transfer" and ins.lands_at not in (None, ins.bank) and \
                    self.bank.name in (ins.bank, ins.lands_at):
                hold = plan.instruction(ins.hold or 0)
                try:  # as for any transfer between banks (§13): never a third bank's IOU
                    check_crossing(ins.bank, ins.lands_at, str(hold.asset))
                except ForeignAssetError as e:
                    return e.code, f"instruction {ins.seq}: {e.message}"
            if ins.bank != self.bank.name:
                continue
            if ins.op == "issue" and (ins.account != self.bank.name or
                                      ins.lands_at != self.bank.name):
                return (BadRequestError.code, f"instruction {ins.seq}: {self.bank.name} issues "
                                              "in a plan only its own IOU, to its customers")
        return None

    def _record(self, r: Reader, address: str) -> KeyRecord:
        chain = self.ledger.chain_of_address(r, address)
        state = None if chain is None else r.state(chain)
        if state is None:
            raise UnknownChainError(f"{address} is not a customer of {self.bank.name}")
        return KeyRecord.from_dict(make_record(self.bank.key, address=state.address,
                                               owner=state.owner, chain=state.chain,
                                               validator=self.bank.name))

    def _sign(self, execution: Execution, type_: str, now: int, **fields: Any) -> LogDoc:
        return sign_log(self.bank.key, type_, plan=execution.plan.id,
                        plan_digest=execution.plan.digest, by=self.bank.name, time=now,
                        **fields)

    def _send(self, w: Writer, execution: Execution, now: int) -> list[str]:
        """Queue the log for every other participant bank."""
        return [enqueue(w, self.bank.key, self.bank.name, bank, "plan", now, flow=None,
                        give_up=None, log=[d.doc for d in execution.docs])
                for bank in execution.plan.banks if bank != self.bank.name]


def _written(w: Writer, outcome: Outcome) -> SignedEntry:
    """Write the entries ``outcome`` makes, each on its own chain (with its state after it);
    the last is the receipt (a credit, after the issue that is its evidence)."""
    for entry, after in zip(outcome.entries, outcome.states, strict=True):
        w.append(entry, after)
    return outcome.entries[-1]
