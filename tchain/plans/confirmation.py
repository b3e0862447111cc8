"""The confirmation round before a plan's first irreversible step (docs/protocol.md §14,
docs/adr/0014, its Update "the confirmation round"): what a bank signs, and when, given its
log.

A plan whose proposal says ``confirm`` has one decider: the bank of its first irreversible
instruction (a transfer, release or issue). Every contributor signs its ``confirmation`` once
its log shows every instruction before that one done and approved, with no rejection,
failure or proven equivocation; after that it no longer voids the plan on what it learns,
but follows the decider. The decider does the step (or, for a transfer to another bank, sends
it: the payee bank's first answer decides it from then on, as always) only once its log holds
every contributor's confirmation. If a bank that waits on it may exist and it learns a
failure or an equivocation first, or the step's due passes without every confirmation, it
aborts: its failed completion of the step, with no receipt, makes every bank compensate.

So a bank told "no" by an equivocator voids the plan and never confirms, and no bank told
"yes" can move value without it: the race ADR 0014 left ("Left (1)") is closed by one
bank's one word, the pattern the payee bank's first answer already follows (docs/adr/0011).
"""

from __future__ import annotations

from typing import Protocol

from tchain.plans.document import Instruction
from tchain.plans.execution import Execution
from tchain.plans.log import LogDoc

__all__ = ["abort", "abort_past_due", "confirmation", "waits_for_confirmations"]


class Signer(Protocol):
    """Signs a bank's log document on a plan (validator.plans.Plans._sign)."""

    def __call__(self, execution: Execution, type_: str, now: int, **fields: object
                 ) -> LogDoc: ...


def waits_for_confirmations(execution: Execution, ins: Instruction) -> bool:
    """Whether ``ins`` is the first irreversible instruction of a plan with ``confirm`` and
    some contributor has not confirmed yet: its bank neither does it nor sends it, its payee
    bank does not credit it (it answers ``pending``), and no other bank calls it late (its
    bank aborts it at its due)."""
    return ins == execution.first_irreversible and not execution.confirmed


def confirmation(execution: Execution, me: str, now: int, sign: Signer) -> LogDoc | None:
    """Our confirmation, once our log shows the first irreversible instruction's turn (every
    one before it done and approved, nothing rejected or failed) and no equivocation, if we
    never said it nor compensated."""
    first = execution.first_irreversible
    if first is None or me in execution.confirmed_by or me in execution.compensations or \
            execution.equivocations or execution.turn() != first:
        return None
    return sign(execution, "confirmation", now, seq=first.seq)


def abort(execution: Execution, me: str, now: int, sign: Signer) -> LogDoc | None:
    """Our abort as the decider, when a bank that is no equivocator confirmed (it waits for
    our word) and we learned a rejection, a failure or an equivocation before every
    contributor confirmed. With every confirmation we go instead: no honest bank released
    anything, since each confirmed and so waits for us."""
    first = execution.first_irreversible
    if first is None or first.bank != me or execution.confirmed or \
            execution.instructions[first.seq].completion is not None or \
            not execution.committed:
        return None
    if not (execution.equivocations or execution.rejected_by or
            execution.failed_at not in (None, first)):
        return None  # nothing learned; or the step failed already (its payee bank's word)
    return sign(execution, "completion", now, seq=first.seq, status="failed", receipts=[],
                error="conflict")


def abort_past_due(execution: Execution, now: int, sign: Signer) -> LogDoc | None:
    """Our abort of our first irreversible instruction once its due passed without every
    contributor's confirmation (``expired``); None while it may still come."""
    due = execution.due()
    first = execution.first_irreversible
    if first is None or due is None or now <= due:
        return None
    return sign(execution, "completion", now, seq=first.seq, status="failed", receipts=[],
                error="expired")
