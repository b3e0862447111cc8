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
  plan has released its holds;
- ``failed`` after an irreversible failure: a bank that did not do its instruction once
  value started to move.

:meth:`Execution.append` refuses any document that does not fit: a signature by another key,
a bank that takes no part, a second word from the same bank, a completion out of turn.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from tchain.errors import (
    BadRequestError,
    ConflictError,
    ForbiddenError,
    SignatureError,
)
from tchain.plans.document import Instruction, Plan
from tchain.plans.log import LogDoc

__all__ = ["STATES", "Execution", "InstructionState"]

STATES = ("proposed", "approved", "executing", "completed", "compensating", "compensated",
          "failed")


@dataclass(frozen=True, slots=True)
class InstructionState:
    """Where one instruction stands: its completion, and each other contributor's word on it."""

    seq: int
    completion: LogDoc | None = None
    approvals: frozenset[str] = frozenset()
    rejections: frozenset[str] = frozenset()

    def status(self, others: frozenset[str]) -> str:
        """``pending``, ``proposed`` (done, awaiting approvals), ``complete``, ``failed``
        (done wrong, or not done), or ``rejected``."""
        if self.completion is None:
            return "failed" if self.rejections else "pending"
        if self.completion.body["status"] == "failed":
            return "failed"
        if self.rejections:
            return "rejected"
        return "complete" if others <= self.approvals else "proposed"


@dataclass(frozen=True, slots=True)
class Execution:
    """The log of one plan, checked document by document, and the state it gives.

    ``keys`` are the participant banks' keys (pinned: a bank knows its peers'), by name.
    ``consents`` the chains whose owners consented, by address.
    """

    plan: Plan
    keys: Mapping[str, str] = field(repr=False)
    docs: tuple[LogDoc, ...] = ()
    approvals: Mapping[str, LogDoc] = field(default_factory=dict)
    rejection: LogDoc | None = None
    consents: Mapping[str, str] = field(default_factory=dict)
    instructions: Mapping[int, InstructionState] = field(default_factory=dict)
    compensations: Mapping[str, LogDoc] = field(default_factory=dict)

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

    def others(self, bank: str) -> frozenset[str]:
        """The contributors that decide on ``bank``'s completions."""
        return frozenset(self.plan.contributors) - {bank}

    def status(self, seq: int) -> str:
        ins = self.plan.instruction(seq)
        return self.instructions[seq].status(self.others(ins.bank))

    @property
    def approved(self) -> bool:
        return self.rejection is None and set(self.approvals) == set(self.plan.contributors)

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

    @property
    def holding_banks(self) -> frozenset[str]:
        """The banks that must compensate: those with a hold whose completion is logged."""
        return frozenset(self.plan.instruction(s).bank for s, st in self.instructions.items()
                         if st.completion is not None and self.plan.instruction(s).op == "hold"
                         and st.completion.body["status"] == "done")

    @property
    def state(self) -> str:
        if self.rejection is not None:
            return "failed"
        if not self.approved:
            return "proposed"
        failed = self.failed_at
        if failed is not None:
            if not failed.reversible:
                return "failed"
            return "compensated" if self.holding_banks <= set(self.compensations) \
                else "compensating"
        if self._first_unfinished() is None:
            return "completed"
        started = any(st.completion is not None for st in self.instructions.values())
        return "executing" if started else "approved"

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
        if ins is None or ins.seq == 1:
            return self.plan.time
        before = self.instructions[ins.seq - 1]
        times = [d.time for d in self.docs if d.type == "completion_approval"
                 and d.body["seq"] == before.seq]
        return max(times, default=self.plan.time)

    def due(self) -> int | None:
        """By when the current instruction must be complete: the plan's deadline for a
        reversible one (every hold must stand by it), else as long again from its turn."""
        ins = self.turn()
        if ins is None:
            return None
        if ins.reversible:
            return self.plan.deadline
        start = self.turn_since()
        if ins.op == "await" and ins.until is not None:
            start = max(start, ins.until)
        return start + (self.plan.deadline - self.plan.time)

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
        step = getattr(self, f"_{doc.type}")
        out: Execution = step(doc)
        return replace(out, docs=(*self.docs, doc))

    def _approval(self, doc: LogDoc) -> Execution:
        if doc.by in self.approvals or self.rejection is not None:
            raise ConflictError(f"{doc.by} has decided on plan {self.plan.id} already")
        want = self.plan.signers(doc.by)
        consents: dict[str, str] = {}
        for consent, record in doc.consents():
            record.verify(self.keys[doc.by])
            if record.validator != doc.by or record.address != consent.by or \
                    record.chain != consent.body["chain"]:
                raise BadRequestError(f"the record of {record.address} beside the consent of "
                                      f"{consent.by} is not {doc.by}'s record of that chain")
            if consent.plan != self.plan.id or consent.plan_digest != self.plan.digest:
                raise BadRequestError(f"the consent of {consent.by} is to another plan")
            _verify(consent, record.owner, consent.by)
            consents[consent.by] = record.chain
        if set(consents) != set(want):
            raise BadRequestError(f"{doc.by}'s approval must carry the consents of exactly "
                                  f"{', '.join(want) or 'no one'}, got "
                                  f"{', '.join(sorted(consents)) or 'none'}")
        return replace(self, approvals={**self.approvals, doc.by: doc},
                       consents={**self.consents, **consents})

    def _rejection(self, doc: LogDoc) -> Execution:
        if doc.by in self.approvals or self.rejection is not None:
            raise ConflictError(f"{doc.by} has decided on plan {self.plan.id} already")
        return replace(self, rejection=doc)

    def _completion(self, doc: LogDoc) -> Execution:
        seq = doc.body["seq"]
        ins = self._instruction(seq)
        if ins.bank != doc.by:
            raise ForbiddenError(f"instruction {seq} is {ins.bank}'s to do, not {doc.by}'s")
        if self.turn() != ins:
            raise ConflictError(f"instruction {seq} of plan {self.plan.id} is not due: the "
                                f"plan is {self.state}, at "
                                f"{getattr(self.turn(), 'seq', None)}")
        st = self.instructions[seq]
        if st.completion is not None or st.rejections:
            raise ConflictError(f"instruction {seq} has a completion or a rejection already")
        if doc.body["status"] == "done":
            check_receipts(ins, doc, self)
        return self._with(replace(st, completion=doc))

    def _decision(self, doc: LogDoc, approve: bool) -> Execution:
        seq = doc.body["seq"]
        ins = self._instruction(seq)
        if doc.by == ins.bank:
            raise ForbiddenError(f"{doc.by} does not decide on its own instruction {seq}")
        st = self.instructions[seq]
        if doc.by in st.approvals | st.rejections:
            raise ConflictError(f"{doc.by} has decided on instruction {seq} already")
        completion = None if st.completion is None else st.completion.id
        if doc.body["completion"] != (completion or "0" * 64):
            raise BadRequestError(f"the decision on instruction {seq} names completion "
                                  f"{doc.body['completion']}, the log has {completion}")
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

    def _compensation(self, doc: LogDoc) -> Execution:
        failed = self.failed_at
        if failed is None or not failed.reversible:
            raise ConflictError(f"plan {self.plan.id} has no reversible failure to compensate")
        if doc.by in self.compensations:
            raise ConflictError(f"{doc.by} has compensated already")
        check_compensation(doc, self)
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
            "approved_by": sorted(self.approvals), "consents": dict(self.consents),
            "turn": getattr(self.turn(), "seq", None), "due": self.due(),
            "instructions": [{**ins.to_dict(), "status": self.status(ins.seq),
                              "receipts": self._receipts(ins.seq)}
                             for ins in self.plan.instructions],
            "log": [d.doc for d in self.docs],
        }


def _verify(doc: LogDoc, key: str, who: str) -> None:
    try:
        doc.verify(key)
    except SignatureError as e:
        raise SignatureError(f"the {doc.type} of plan {doc.plan} is not signed by {who}") from e


def check_receipts(ins: Instruction, doc: LogDoc, execution: Execution) -> None:
    """Check that a completion's receipts do exactly ``ins``: signed by the bank that does it.

    Only ``await`` completes without a receipt; the entries that do the other instructions on
    customers' chains are not built yet (docs/adr/0008, what is left), so a completion that
    claims them is refused rather than believed.
    """
    receipts = doc.receipts()
    if ins.op == "await":
        if receipts:
            raise BadRequestError(f"instruction {ins.seq} (await) completes without receipts")
        if ins.until is not None and doc.time < ins.until:
            raise BadRequestError(f"instruction {ins.seq} waits until {ins.until}; its "
                                  f"completion is dated {doc.time}")
        return
    raise BadRequestError(f"instruction {ins.seq} ({ins.op}): this bank cannot yet check a "
                          "receipt of a plan's entries")


def check_compensation(doc: LogDoc, execution: Execution) -> None:
    """A compensation carries the releases of the bank's standing holds (see
    :func:`check_receipts`: not built yet, so only a bank with no hold standing may say it
    has compensated)."""
    if doc.by in execution.holding_banks or doc.body["receipts"]:
        raise BadRequestError(f"{doc.by}'s compensation: this bank cannot yet check the "
                              "release of a plan's hold")
