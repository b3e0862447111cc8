"""A plan's execution state: the append-only log of its signed documents, and what follows.

Every participant keeps the same log and derives the same state from it, whatever its clock:
each bank's word on the plan is one signed document, its first word is final, and the state is
a function of the documents alone (docs/protocol.md §14):

- ``proposed`` until every contributor approved; ``failed`` if one rejected (nothing moved);
- ``approved`` once every contributor approved (with its customers' consents);
- ``executing`` once an instruction is completed; instructions run in seq order, and one is
  complete when every other contributor approved its completion;
- ``completed`` when every instruction is;
- ``compensating`` after a reversible failure (a hold failed, or a contributor rejected or
  timed out a reversible instruction), ``compensated`` once every bank that holds for the
  plan has released its holds (its ``compensation``, with the releases as receipts);
- ``failed`` after an irreversible failure: an instruction from the first transfer on failed,
  or was not done when it was due (a contributor's word). The banks release their holds that
  nothing was paid from yet, as for a compensation; the log is the proof of who did not do
  what, and when it was due.
- a bank's two different words on one question (tchain.plans.questions) are both kept, as its
  equivocation: while nothing moved for good the plan is ``failed``, its :attr:`culprit` that
  bank, and every holding bank compensates; once an irreversible step is done, that bank's
  words count for nothing, and the honest banks go on (docs/adr/0014).
- in a plan with ``confirm``, every contributor confirms the first irreversible instruction
  before its bank (the decider) does it; a confirmation by a bank that is no equivocator
  makes the plan wait for the decider's word rather than void; the decider's failed
  completion of it with no receipt (its abort) ends the plan ``compensated``
  (tchain.plans.confirmation, docs/adr/0014's Update "the confirmation round").

:meth:`Execution.append` refuses any document that does not fit: a signature by another key,
a bank that takes no part, a word on a plan that is over, a completion out of turn.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from tchain.errors import (
    BadRequestError,
    ConflictError,
    EncodingError,
    ForbiddenError,
    SignatureError,
)
from tchain.model import SignedEntry, SignedIntent
from tchain.plans.document import Instruction, Plan
from tchain.plans.log import LogDoc
from tchain.plans.questions import ZERO_COMPLETION, contradicts, owed, question
from tchain.plans.receipts import Receipts, check_receipts, check_release, consent_body

__all__ = ["STATES", "ZERO_COMPLETION", "Execution", "InstructionState", "owed"]

STATES = ("proposed", "approved", "executing", "completed", "compensating", "compensated",
          "failed")


@dataclass(frozen=True, slots=True)
class InstructionState:
    """Where one instruction stands: its completion, and each other contributor's word on it."""

    seq: int
    completion: LogDoc | None = None
    approvals: frozenset[str] = frozenset()
    rejections: frozenset[str] = frozenset()

    def status(self, others: frozenset[str], owed: bool = False,
               ignored: frozenset[str] = frozenset()) -> str:
        """``pending``, ``proposed`` (done, awaiting approvals), ``complete``, ``failed``
        (done wrong, or not done), or ``rejected``. Of an ``owed`` instruction (see
        :func:`owed`) a word that it came late fails nothing: it is still owed. The words of
        the ``ignored`` banks (proven equivocators, :attr:`Execution.ignored`) count for
        nothing."""
        rejections = frozenset() if owed else self.rejections - ignored
        if self.completion is None:
            return "failed" if rejections else "pending"
        if self.completion.body["status"] == "failed":
            return "failed"
        if rejections:
            return "rejected"
        return "complete" if others <= self.approvals else "proposed"


@dataclass(frozen=True, slots=True)
class Execution:
    """The log of one plan, checked document by document, and the state it gives.

    ``keys`` are the participant banks' keys (pinned: a bank knows its peers'), by name;
    ``chains`` the chain of each address the plan names, by its bank's approval; ``consents``
    the customers' signed consent to each hold, by the hold's seq.
    """

    plan: Plan
    keys: Mapping[str, str] = field(repr=False)
    docs: tuple[LogDoc, ...] = ()
    approvals: Mapping[str, LogDoc] = field(default_factory=dict)
    rejection: LogDoc | None = None
    rejected_by: frozenset[str] = frozenset()
    chains: Mapping[str, str] = field(default_factory=dict)
    consents: Mapping[int, SignedIntent] = field(default_factory=dict)
    instructions: Mapping[int, InstructionState] = field(default_factory=dict)
    compensations: Mapping[str, LogDoc] = field(default_factory=dict)
    equivocations: tuple[tuple[LogDoc, LogDoc], ...] = ()  # (the log's word, the other)
    confirmations: Mapping[str, LogDoc] = field(default_factory=dict)  # docs/adr/0014

    @classmethod
    def start(cls, proposal: LogDoc, keys: Mapping[str, str]) -> Execution:
        """The log that ``proposal`` opens: the plan, checked, proposed by its bank.

        Raises:
            BadRequestError: the proposal is not a plan's; SignatureError: not its bank's;
            ForbiddenError: a bank of the plan has no key here (not a pinned peer).
        """
        if proposal.type != "proposal":
            raise BadRequestError(f"a plan's log starts with its proposal, got a {proposal.type}")
        plan = Plan.from_dict(proposal.body["document"])
        if proposal.plan != plan.id or proposal.plan_digest != plan.digest or \
                proposal.by != plan.bank:
            raise BadRequestError(f"the proposal of {proposal.plan} must name the plan it "
                                  f"carries ({plan.id}, digest {plan.digest}) and be by its "
                                  f"bank {plan.bank}")
        missing = [b for b in plan.banks if b not in keys]
        if missing:
            raise ForbiddenError(f"plan {plan.id} names banks that are not pinned here: "
                                 f"{', '.join(missing)}")
        _verify(proposal, keys[plan.bank], plan.bank)
        return cls(plan, dict(keys), (proposal,),
                   instructions={i.seq: InstructionState(i.seq) for i in plan.instructions})

    @classmethod
    def replay(cls, docs: list[LogDoc] | tuple[LogDoc, ...], keys: Mapping[str, str]
               ) -> Execution:
        """The execution a whole log gives (checked again from its proposal)."""
        execution = cls.start(docs[0], keys)
        for doc in docs[1:]:
            execution = execution.append(doc)
        return execution

    # --- what follows from the log -------------------------------------------------------

    def others(self, bank: str, ignored: frozenset[str] | None = None) -> frozenset[str]:
        """The contributors that decide on ``bank``'s completions (never a proven
        equivocator once value moved: :attr:`ignored`)."""
        ignored = self.ignored if ignored is None else ignored
        return frozenset(self.plan.contributors) - {bank} - ignored

    def status(self, seq: int, ignored: frozenset[str] | None = None) -> str:
        """The instruction's status (:meth:`InstructionState.status`); one whose bank said
        both ``done`` and ``failed``, once a bank took the failed one (:attr:`split_decider`),
        is ``failed`` at every bank, whichever completion each got first (docs/adr/0014,
        Update "attack 14")."""
        ins = self.plan.instruction(seq)
        if ins == self.split_step and self.split_decider:
            return "failed"
        return self._logged_status(seq, ignored)

    def _logged_status(self, seq: int, ignored: frozenset[str] | None = None) -> str:
        ignored = self.ignored if ignored is None else ignored
        ins = self.plan.instruction(seq)
        return self.instructions[seq].status(self.others(ins.bank, ignored), owed(ins),
                                             ignored)

    @property
    def approved(self) -> bool:
        return self._approved(self.ignored)

    def _approved(self, ignored: frozenset[str]) -> bool:
        return not self.rejected_by - ignored and \
            set(self.plan.contributors) <= set(self.approvals) | ignored

    # --- a proven equivocation (docs/adr/0014) ---------------------------------------------

    @property
    def moved(self) -> bool:
        """Whether value moved for good: an irreversible instruction's completion is logged
        done (its receipts checked)."""
        return any(not i.reversible and (c := self.instructions[i.seq].completion) is not None
                   and c.body["status"] == "done" for i in self.plan.instructions)

    @property
    def void(self) -> bool:
        """A bank's two different words on one question are both in the log, and nothing
        moved for good: the plan ``failed``, its culprit the equivocator, and every bank
        releases its holds that stand. Once value moved, no hold is released that a later
        step owes: the equivocator's words count for nothing (:attr:`ignored`), the honest
        banks go on, its own instructions are owed, and its proof stands against it. Once a
        bank that is no equivocator confirmed (:attr:`committed`), the decider's word ends
        the plan instead (docs/adr/0014)."""
        return bool(self.equivocations) and not self.moved and not self.committed

    # --- the confirmation round (docs/adr/0014) ---------------------------------------------

    @property
    def first_irreversible(self) -> Instruction | None:
        """The instruction every contributor confirms before it starts, in a plan with
        ``confirm``; its bank is the plan's one decider of whether value moves."""
        return self.plan.first_irreversible if self.plan.confirm else None

    @property
    def confirmed_by(self) -> frozenset[str]:
        """The banks whose signed confirmation is in the log, an equivocator's too: its
        signature is its word (its other word is proven beside it), so whether the first
        irreversible step may start is a function of the documents, not of whether the
        confirmation came before or after the equivocation was proven (docs/adr/0014,
        Update "attack 14")."""
        return frozenset(d.by for d in self.docs if d.type == "confirmation")

    @property
    def confirmed(self) -> bool:
        """Every contributor confirmed: the first irreversible step may start."""
        return set(self.plan.contributors) <= self.confirmed_by

    @property
    def committed(self) -> bool:
        """A bank that is no proven equivocator confirmed, so it waits for the decider's word
        rather than voiding the plan on what it learns afterwards: the decider's done
        completion goes on, its failed one (an abort) makes every bank compensate."""
        return bool(self.confirmed_by - self.equivocators)

    def may_void(self, bank: str) -> bool:
        """Whether ``bank`` may still compensate on a proven equivocation of its own
        knowledge: it never confirmed, so the decider cannot go without it (and it never will
        confirm), and nothing moved."""
        return self.plan.confirm and bool(self.equivocations) and not self.moved and \
            bank not in self.confirmed_by

    @property
    def split_step(self) -> Instruction | None:
        """The first instruction, in a plan with ``confirm``, whose bank said both that it
        did it and that it failed (both completions are in the log, its equivocation): the
        decider's ``done`` and abort of the first irreversible step, or an equivocator's two
        completions of a later one (docs/adr/0014, Updates "the confirmation round" and
        "attack 14")."""
        if not self.plan.confirm or not self.equivocations:
            return None
        for ins in self.plan.instructions:
            said = [d for pair in self.equivocations for d in pair
                    if d.type == "completion" and d.body["seq"] == ins.seq]
            if any(d.body["status"] == "done" for d in said) and \
                    any(d.body["status"] == "failed" for d in said):
                return ins
        return None

    def took_the_abort(self, bank: str) -> bool:
        """Whether ``bank``, no proven equivocator, acted on the failed completion of the
        :attr:`split_step` though its bank also said it was done: it never approved the done
        one, so that step never completes anywhere and no step after it runs; every bank
        then ends the plan as on the failure (the decider's abort: compensated)."""
        split = self.split_step
        if split is None or bank in self.equivocators or \
                self._logged_status(split.seq) == "complete":
            return False
        done = {d.id for pair in self.equivocations for d in pair
                if d.type == "completion" and d.body["seq"] == split.seq and
                d.body["status"] == "done"}
        return not any(d.type == "completion_approval" and d.by == bank and
                       d.body["completion"] in done for d in self.docs)

    @property
    def split_decider(self) -> bool:
        """A bank said both words on its step, and a bank that took the failed one
        compensated (:meth:`took_the_abort`): the step is failed everywhere."""
        return any(self.took_the_abort(b) for b in self.compensations)

    def aborts(self, ins: Instruction, completion: LogDoc) -> bool:
        """Whether ``completion`` is the decider's abort: its failed completion of the first
        irreversible instruction carrying no receipt (nothing was done, nor sent). It is
        appended whatever the turn, before that instruction has a completion, and fails the
        plan: every bank compensates, the decider's hold too."""
        return ins == self.first_irreversible and completion.body["status"] == "failed" and \
            not completion.body["receipts"]

    @property
    def equivocators(self) -> frozenset[str]:
        """The banks whose two different words on one question are both in the log."""
        return frozenset(first.by for first, _ in self.equivocations)

    @property
    def ignored(self) -> frozenset[str]:
        """The proven equivocators whose words count for nothing (once value moved)."""
        return self.equivocators if self.moved or self.committed else frozenset()

    @property
    def culprit(self) -> str | None:
        """The proven equivocator of the earliest question (least seq, then name), if any."""
        asked = sorted(((question(first) or ("", 0))[1], first.by)
                       for first, _ in self.equivocations)
        return asked[0][1] if asked else None

    def _first_unfinished(self) -> Instruction | None:
        for ins in self.plan.instructions:
            if self.status(ins.seq) != "complete":
                return ins
        return None

    @property
    def failed_at(self) -> Instruction | None:
        """The first instruction that failed or was rejected, if one did."""
        for ins in self.plan.instructions:
            if self.status(ins.seq) in ("failed", "rejected"):
                return ins
        return None

    def hold_entry(self, seq: int) -> SignedEntry | None:
        """The entry that did hold ``seq``, if its completion is logged done."""
        completion = self.instructions[seq].completion
        if completion is None or completion.body["status"] != "done":
            return None
        return completion.receipts()[0]

    def standing(self, bank: str) -> list[Instruction]:
        """``bank``'s holds that stand: done, and not yet closed by a completion of the
        transfer or release that ends them (one in flight still stands)."""
        out = []
        for ins in self.plan.holds(bank):
            closes = self.plan.closer(ins.seq)
            closer = self.instructions[closes.seq].completion
            if self.hold_entry(ins.seq) is not None and \
                    (closer is None or self.aborts(closes, closer)) and \
                    ins.seq not in self._released():
                out.append(ins)
        return out

    def _released(self) -> set[int]:
        """The holds the compensations released."""
        out = set()
        for doc in self.compensations.values():
            ids = {r.evidence_entry(0).id for r in doc.receipts()}
            out |= {i.seq for i in self.plan.holds() if (e := self.hold_entry(i.seq)) is not None
                    and e.id in ids}
        return out

    @property
    def holding_banks(self) -> frozenset[str]:
        """The banks that must compensate: those with a hold logged done."""
        return frozenset(i.bank for i in self.plan.holds() if self.hold_entry(i.seq) is not None)

    @property
    def state(self) -> str:
        if self.void or self.rejected_by - self.ignored:
            return "failed"
        if self.split_decider:  # an abort moved nothing; a later step's failure is final
            return self._undone() if self.split_step == self.first_irreversible else "failed"
        if not self.approved:
            return "proposed"
        failed = self.failed_at
        if failed is not None:
            done = self.instructions[failed.seq].completion
            if not failed.reversible and not (done is not None and self.aborts(failed, done)):
                return "failed"  # an abort moved nothing: it is compensated (docs/adr/0014)
            return self._undone()
        if self._first_unfinished() is None:
            return "completed"
        started = any(st.completion is not None for st in self.instructions.values())
        return "executing" if started else "approved"

    def _undone(self) -> str:
        """A plan that is undoing: ``compensated`` once every bank that holds for it logged
        its compensation; ``failed`` once only proven equivocators have not (its culprit
        one, its holds its own to release: a bank that signed two words may never sign a
        third, and the plan must end, the same at every bank, and stop counting toward its
        proposer's open plans; its compensation, if it comes, makes it ``compensated``);
        else ``compensating`` (docs/adr/0014, Update "attack 14")."""
        missing = self.holding_banks - set(self.compensations)
        if not missing:
            return "compensated"
        return "failed" if missing <= self.equivocators else "compensating"

    def turn(self) -> Instruction | None:
        """The instruction whose turn it is (every one before it complete), if the plan is
        running; None once it is over or not yet approved."""
        if self.state not in ("approved", "executing"):
            return None
        return self._first_unfinished()

    def turn_since(self) -> int:
        """When the current turn began: the time of the last approval that completed the
        instruction before it (the plan's time for the first)."""
        ins = self.turn()
        return self.plan.time if ins is None else self._since(ins.seq)

    def _since(self, seq: int) -> int:
        """When instruction ``seq``'s turn began (once every one before it is complete)."""
        if seq == 1:
            return self.plan.time
        return max(first_words(self.docs, "completion_approval", seq - 1).values(),
                   default=self.plan.time)

    def due(self) -> int | None:
        """By when the current instruction must be complete: the plan's deadline for a
        reversible one (every hold must stand by it), else as long again from its turn."""
        ins = self.turn()
        return None if ins is None else self.due_of(ins)

    def due_of(self, ins: Instruction) -> int:
        """By when ``ins`` must be complete, once its turn came (see :meth:`due`)."""
        if ins.reversible:
            return self.plan.deadline
        start = self._since(ins.seq)
        if ins.op == "await" and ins.until is not None:
            start = max(start, ins.until)
        return start + (self.plan.deadline - self.plan.time)

    def proven_on(self, doc: LogDoc) -> bool:
        """Whether ``doc``'s bank's equivocation on ``doc``'s question is in the log already.
        Then no later word of it on that question is appended: its words there are at most
        two (three after an honest pair: "late" then approved, or the payee bank's credit and
        "nothing came"), so a bank flooding one question (the same approval dated 999 ways)
        never grows a log past what one message carries (docs/adr/0014, Update: attack 12)."""
        asked = question(doc)
        return asked is not None and any(
            first.by == doc.by and asked in (question(first), question(other))
            for first, other in self.equivocations)

    def contradicted(self, doc: LogDoc) -> LogDoc | None:
        """The document of the log that ``doc`` contradicts (its bank's other answer to the
        same question, tchain.plans.questions), if one does."""
        return next((d for d in self.docs if contradicts(self.plan, d, doc)), None)

    # --- appending ---------------------------------------------------------------------

    def append(self, doc: LogDoc) -> Execution:
        """The execution with ``doc`` appended, if it fits.

        Raises:
            BadRequestError: another plan's, or a document that does not fit the plan;
            SignatureError: not signed by the bank (or customer) it names;
            ForbiddenError: by a bank that does not decide this;
            ConflictError: a second word of a bank on the same question, or out of turn.
        """
        if doc.plan != self.plan.id or doc.plan_digest != self.plan.digest:
            raise BadRequestError(f"a {doc.type} of {doc.plan} (digest {doc.plan_digest}) is "
                                  f"not of plan {self.plan.id} (digest {self.plan.digest})")
        if any(d.id == doc.id for d in self.docs):
            return self  # the same document again changes nothing
        if doc.type in ("proposal", "consent"):
            raise BadRequestError(f"a {doc.type} is not appended to a plan's log by itself")
        if self.plan.role(doc.by) != "contributor":
            raise ForbiddenError(f"{doc.by} is not a contributor of plan {self.plan.id}")
        _verify(doc, self.keys[doc.by], doc.by)
        if self.proven_on(doc):
            raise ConflictError(f"{doc.by}'s equivocation on {question(doc)} of plan "
                                f"{self.plan.id} is in the log: no later word of it is kept")
        first = self.contradicted(doc)
        step = getattr(self, f"_{doc.type}")
        try:
            out: Execution = step(doc)
        except ConflictError:
            if first is None:
                raise
        if first is not None:
            # kept beside the word it contradicts, changing nothing else: each bank that
            # holds both words ends the plan alike, whatever the order (docs/adr/0014)
            out = replace(self, equivocations=(*self.equivocations, (first, doc)))
        return replace(out, docs=(*self.docs, doc))

    def _approval(self, doc: LogDoc) -> Execution:
        """An approval carries the approving bank's key record of every address the plan
        names there, and its customers' consent to each of their holds, each verifying under
        the key its chain's record gives and saying exactly what the plan says."""
        self._undecided(doc.by)
        chains: dict[str, str] = {}
        owners: dict[str, str] = {}
        for record in doc.records():
            record.verify(self.keys[doc.by])
            if record.validator != doc.by:
                raise BadRequestError(f"{doc.by}'s approval carries a record of "
                                      f"{record.validator}")
            chains[record.address], owners[record.address] = record.chain, record.owner
        named = self.plan.named(doc.by)
        if set(chains) != set(named):
            raise BadRequestError(f"{doc.by}'s approval must carry the records of exactly "
                                  f"{', '.join(named) or 'no one'}, got "
                                  f"{', '.join(sorted(chains)) or 'none'}")
        consents: dict[int, SignedIntent] = {}
        for consent in doc.consents():
            seq = consent.doc["intent"]["body"]["hold"]
            ins = self.plan.instruction(seq) if 1 <= seq <= len(self.plan.instructions) \
                else None
            if ins is None or ins.op != "hold" or ins.bank != doc.by or seq in consents or \
                    consent.doc["intent"]["body"] != consent_body(self.plan, seq):
                raise BadRequestError(f"{doc.by}'s approval carries a consent to hold {seq} "
                                      "that is not the plan's")
            assert ins.account is not None
            if consent.chain != chains[ins.account] or consent.seq != 0:
                raise BadRequestError(f"the consent to hold {seq} is not for {ins.account}'s "
                                      "chain, with seq 0")
            try:
                consent.verify(owners[ins.account])
            except SignatureError as e:
                raise SignatureError(f"the consent to hold {seq} is not signed by "
                                     f"{ins.account}'s key") from e
            consents[seq] = consent
        want = {i.seq for i in self.plan.holds(doc.by)}
        if set(consents) != want:
            raise BadRequestError(f"{doc.by}'s approval must carry the consents to holds "
                                  f"{sorted(want)}, got {sorted(consents)}")
        return replace(self, approvals={**self.approvals, doc.by: doc},
                       chains={**self.chains, **chains}, consents={**self.consents, **consents})

    def _rejection(self, doc: LogDoc) -> Execution:
        """The first rejection fails the plan; another bank's, after it, is kept too (each
        bank decided on its own, and the logs must agree whatever the order)."""
        self._undecided(doc.by)
        return replace(self, rejection=self.rejection or doc,
                       rejected_by=self.rejected_by | {doc.by})

    def _undecided(self, bank: str) -> None:
        """A bank decides on a plan once: an approval or a rejection, never both, never
        twice. An approval after another bank's rejection is kept (the plan stays failed)."""
        if bank in self.approvals or bank in self.rejected_by:
            raise ConflictError(f"{bank} has decided on plan {self.plan.id} already")

    def _completion(self, doc: LogDoc) -> Execution:
        seq = doc.body["seq"]
        ins = self._instruction(seq)
        if ins.bank != doc.by:
            raise ForbiddenError(f"instruction {seq} is {ins.bank}'s to do, not {doc.by}'s")
        st = self.instructions[seq]
        abort = self.aborts(ins, doc)
        # its turn; or it was, and a contributor's clock found it late meanwhile: what the
        # bank did is logged all the same, so its hold is released with the others
        if abort and not self._approved(self.equivocators):
            raise ConflictError(f"plan {self.plan.id} is not approved: no bank waits on "
                                f"{doc.by}'s word on instruction {seq} yet")
        if self.turn() != ins and not abort and \
                not ((st.rejections or self.void) and self._reached(ins)):
            raise ConflictError(f"instruction {seq} of plan {self.plan.id} is not due: the "
                                f"plan is {self.state}, at "
                                f"{getattr(self.turn(), 'seq', None)}")
        if st.completion is not None:
            raise ConflictError(f"instruction {seq} has a completion already")
        if ins == self.first_irreversible and doc.body["status"] == "done" and \
                not self.confirmed:
            raise ConflictError(f"instruction {seq} of plan {self.plan.id} starts only once "
                                "every contributor confirmed; confirmed: "
                                f"{', '.join(sorted(self.confirmed_by)) or 'none'}")
        payee = _payee_bank(ins)
        if doc.body["status"] == "failed" and payee is not None and \
                payee not in st.rejections and not abort:
            raise ConflictError(f"transfer {seq} fails only on the word of {payee}, its payee "
                                "bank, that it will never credit it: that word is not logged")
        if not abort:
            check_receipts(ins, doc.body["status"], _receipts_of(doc), doc.time,
                           self._checks())
        return self._with(replace(st, completion=doc))

    def _reached(self, ins: Instruction) -> bool:
        """Whether every instruction before ``ins`` is complete (its turn came), and the plan
        was approved, counting no proven equivocator's word: a bank that acted on the one
        word it was told, before it knew the other, did so in its turn, and what it did is
        logged at every bank alike (docs/adr/0014)."""
        liars = self.equivocators
        return self._approved(liars) and all(self.status(s, liars) == "complete"
                                             for s in range(1, ins.seq))

    def _checks(self) -> Receipts:
        return Receipts(self.plan, self.keys, self.chains, self.consents, self.hold_entry)

    def _decision(self, doc: LogDoc, approve: bool) -> Execution:
        seq = doc.body["seq"]
        ins = self._instruction(seq)
        if doc.by == ins.bank:
            raise ForbiddenError(f"{doc.by} does not decide on its own instruction {seq}")
        st = self.instructions[seq]
        other = st.rejections if approve else st.approvals
        # a second word that means the same as the bank's first is redundant: it passes the
        # same checks and is kept, so logs converge, and changes nothing (docs/adr/0014)
        if doc.by in other and doc.by != _payee_bank(ins) and not (approve and owed(ins)):
            # the payee bank's credit and its word that nothing came contradict each other:
            # both are kept, the plan fails, and the log proves it lied (docs/adr/0012)
            raise ConflictError(f"{doc.by} has decided on instruction {seq} already")
        if not self._reached(ins):
            raise ConflictError(f"instruction {seq} of plan {self.plan.id} is not due yet")
        if self.state == "completed":  # every word on it is in: a later one repaints nothing
            raise ConflictError(f"plan {self.plan.id} is completed: no word on it comes after")
        completion = None if st.completion is None else st.completion.id
        named = doc.body["completion"]
        if not approve:
            _may_reject(ins, doc.by, named)
            if named == ZERO_COMPLETION and doc.time <= self.due_of(ins):
                raise ConflictError(f"instruction {seq} is due at {self.due_of(ins)}: a word "
                                    f"that nothing came, dated {doc.time}, is premature")
        # a rejection names the zero completion when its bank had seen none by when it was
        # due: it still counts once the completion comes, whichever came first
        if named != completion and not (not approve and named == ZERO_COMPLETION):
            if any(other.id == named for _, other in self.equivocations):
                # a word on its bank's other completion, kept here as its equivocation: kept
                # too, counting for nothing, so every bank holds the same documents whichever
                # completion it got first (docs/adr/0014, Update "attack 14")
                return self
            if completion is None and named != ZERO_COMPLETION:
                # a completion this log does not hold yet (one it left out as a conflict): the
                # word on it is left out the same way, the rest of the log taken, and it comes
                # again with the completion (docs/adr/0014, Update "attack 14")
                raise ConflictError(f"the decision on instruction {seq} names completion "
                                    f"{named}, which this log does not hold yet")
            raise BadRequestError(f"the decision on instruction {seq} names completion "
                                  f"{named}, the log has {completion}")
        if approve:
            if st.completion is None:
                raise ConflictError(f"instruction {seq} has no completion to approve")
            return self._with(replace(st, approvals=st.approvals | {doc.by}))
        return self._with(replace(st, rejections=st.rejections | {doc.by}))

    def _completion_approval(self, doc: LogDoc) -> Execution:
        return self._decision(doc, True)

    def _completion_rejection(self, doc: LogDoc) -> Execution:
        """A rejection of a completion, or (naming the zero completion) a contributor's word
        that the instruction was not done by when it was due, by its own clock."""
        return self._decision(doc, False)

    def _confirmation(self, doc: LogDoc) -> Execution:
        """A contributor's word that its log shows every instruction before the first
        irreversible one done and approved, with no rejection, failure or proven
        equivocation (docs/adr/0014). Its "no" to any of those contradicts it (an
        equivocation, tchain.plans.questions); so does a second one (one word per question,
        docs/adr/0014 Update: attack 12)."""
        first = self.first_irreversible
        if first is None or doc.body["seq"] != first.seq:
            raise BadRequestError(f"plan {self.plan.id} confirms instruction "
                                  f"{getattr(first, 'seq', None)}, not {doc.body['seq']}")
        if self.contradicted(doc) is not None:
            raise ConflictError(f"{doc.by} confirms what it said no to in plan {self.plan.id}")
        if not self._reached(first):
            raise ConflictError(f"instruction {first.seq} of plan {self.plan.id} is not due: "
                                "nothing to confirm yet")
        if doc.by in self.confirmations:
            return self
        return replace(self, confirmations={**self.confirmations, doc.by: doc})

    def _compensation(self, doc: LogDoc) -> Execution:
        """A bank's releases of its holds that stood when the plan failed (those it had not
        begun to pay from: a transfer in flight ends as the payee bank first answers it), or
        when it voided the plan on an equivocation before it confirmed (:meth:`may_void`)."""
        if self.failed_at is None and not self.void and not self.may_void(doc.by) and \
                not self.split_decider and not self.took_the_abort(doc.by):
            raise ConflictError(f"plan {self.plan.id} has not failed: nothing to compensate")
        if doc.by in self.compensations:
            raise ConflictError(f"{doc.by} has compensated already")
        standing = {e.id: i.seq for i in self.standing(doc.by)
                    if (e := self.hold_entry(i.seq)) is not None}
        released = []
        for release in _receipts_of(doc):
            try:
                hold = release.evidence_entry(0)
            except (EncodingError, IndexError) as e:
                raise BadRequestError(f"{doc.by}'s compensation carries a release without "
                                      "its hold") from e
            if hold.id not in standing or hold.id in released:
                raise BadRequestError(f"{doc.by}'s compensation releases {hold.id}, which is "
                                      "not one of its plan holds standing")
            check_release(release, doc.by, hold, self._checks())
            released.append(hold.id)
        return replace(self, compensations={**self.compensations, doc.by: doc})

    def _instruction(self, seq: int) -> Instruction:
        if not 1 <= seq <= len(self.plan.instructions):
            raise BadRequestError(f"plan {self.plan.id} has no instruction {seq}")
        return self.plan.instruction(seq)

    def _with(self, st: InstructionState) -> Execution:
        return replace(self, instructions={**self.instructions, st.seq: st})

    def _receipts(self, seq: int) -> list[Any]:
        completion = self.instructions[seq].completion
        return [] if completion is None else list(completion.body["receipts"])

    def to_dict(self) -> dict[str, Any]:
        """What ``tchain plan show --json`` prints: the state, each instruction with its
        receipts, and the log."""
        return {
            "id": self.plan.id, "state": self.state, "plan": self.plan.doc,
            "approved_by": sorted(self.approvals), "chains": dict(self.chains),
            "turn": getattr(self.turn(), "seq", None), "due": self.due(),
            **({"culprit": self.culprit} if self.equivocations else {}),
            **({"confirmed_by": sorted(self.confirmed_by)} if self.plan.confirm else {}),
            "instructions": [{**ins.to_dict(), "status": self.status(ins.seq),
                              "receipts": self._receipts(ins.seq)}
                             for ins in self.plan.instructions],
            "log": [d.doc for d in self.docs],
        }


def _may_reject(ins: Instruction, by: str, named: str) -> None:
    """Who may reject an irreversible instruction (docs/adr/0011): no one a completion of it
    that the log took (its receipts were checked: what it did is done); and only the bank it
    lands at may say it did not come in time, since that bank alone could have credited it
    meanwhile. Any other clock saying "late" would fail the plan while the value is in
    flight: the other holds released, and the payee paid all the same.

    Raises:
        ConflictError: a rejection of a logged irreversible completion;
        ForbiddenError: "late" said by a bank the instruction does not land at.
    """
    if ins.reversible:
        return
    if named != ZERO_COMPLETION:
        raise ConflictError(f"instruction {ins.seq} is irreversible and its completion was "
                            "logged, its receipts checked: what it did is done")
    if ins.lands_at is not None and by != ins.lands_at:
        raise ForbiddenError(f"only {ins.lands_at}, the payee's bank of instruction "
                             f"{ins.seq}, says whether it came in time")


def first_words(docs: tuple[LogDoc, ...], type_: str, seq: int) -> dict[str, int]:
    """When each bank first said a ``type_`` of instruction ``seq``: the least time of its
    words, so a bank's redundant later word moves nothing, whatever the order they came in
    (docs/adr/0014)."""
    out: dict[str, int] = {}
    for d in docs:
        if d.type == type_ and d.body["seq"] == seq:
            out[d.by] = min(out.get(d.by, d.time), d.time)
    return out


def _payee_bank(ins: Instruction) -> str | None:
    """The bank a transfer between two banks lands at: the only one whose word fails it."""
    if ins.op != "transfer" or ins.lands_at in (None, ins.bank):
        return None
    return ins.lands_at


def _verify(doc: LogDoc, key: str, who: str) -> None:
    try:
        doc.verify(key)
    except SignatureError as e:
        raise SignatureError(f"the {doc.type} of plan {doc.plan} is not signed by {who}") from e


def _receipts_of(doc: LogDoc) -> tuple[SignedEntry, ...]:
    try:
        return doc.receipts()
    except EncodingError as e:
        raise BadRequestError(f"the {doc.type}'s receipts are not signed entries: {e}") from e

