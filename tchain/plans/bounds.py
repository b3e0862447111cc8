"""How long a plan's log can grow, by construction (docs/adr/0014, Update: attack 12).

A bank keeps at most two words of a bank on one question (three after an honest pair: "late"
then approved, or a payee bank's credit and "nothing came"), never a third once its
equivocation is in the log (:meth:`tchain.plans.execution.Execution.proven_on`); one
compensation per bank; one proposal. Counting every contributor as a liar on every question:

- the proposal: 1;
- the plan's approvals and rejections: 2 per contributor;
- per instruction: 2 completions by its bank, and 3 decisions by each other contributor;
- the compensations: 1 per contributor;
- the confirmation round before the first irreversible step (docs/adr/0014): 2 per
  contributor, kept as any word.

With the bounds of a new plan (8 participants, 32 instructions: :func:`check_size`) that is
777 documents, within the 1..1000 a ``plan`` message carries (validator.plans.MAX_LOG), so a
bank never holds a log it could not send; a test checks it
(tests/unit/validator/test_plan_bounds.py), and that the bytes of the largest such log fit
the request body limit. A plan document may still name up to 16 banks and 100 instructions
(tchain.plans.document): a plan kept, or a proof made, before these bounds replays and
verifies as it did; only a bank taking a plan new to it refuses a larger one.
"""

from __future__ import annotations

from tchain.errors import BadRequestRuleError
from tchain.plans.document import Plan

__all__ = ["LARGEST_LOG", "MAX_NEW_INSTRUCTIONS", "MAX_NEW_PARTICIPANTS", "check_size",
           "max_log_docs"]

MAX_NEW_PARTICIPANTS = 8  # the document allows 16: too many for one message's log
MAX_NEW_INSTRUCTIONS = 32  # the document allows 100


def max_log_docs(contributors: int, instructions: int) -> int:
    """The most documents a log of a plan of this size can hold (see the module docstring)."""
    per_instruction = 2 + 3 * (contributors - 1)
    return 1 + 2 * contributors + instructions * per_instruction + contributors + \
        2 * contributors


LARGEST_LOG = max_log_docs(MAX_NEW_PARTICIPANTS, MAX_NEW_INSTRUCTIONS)


def check_size(plan: Plan) -> None:
    """A plan new here names at most MAX_NEW_PARTICIPANTS banks and MAX_NEW_INSTRUCTIONS
    instructions, so every log of it fits one message.

    Raises:
        BadRequestRuleError: it names more.
    """
    if len(plan.participants) > MAX_NEW_PARTICIPANTS or \
            len(plan.instructions) > MAX_NEW_INSTRUCTIONS:
        raise BadRequestRuleError(
            f"plan {plan.id} names {len(plan.participants)} banks and "
            f"{len(plan.instructions)} instructions: a plan has at most "
            f"{MAX_NEW_PARTICIPANTS} and {MAX_NEW_INSTRUCTIONS}, so its log fits one message")
