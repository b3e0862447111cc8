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

With the plan bounds (8 contributors, 32 instructions) that is 777 documents, within the
1..1000 a ``plan`` message carries (validator.plans.MAX_LOG), so a bank never holds a log it
could not send; a test checks it (tests/unit/tchain/test_plan_bounds.py), and one that the
bytes of the largest such log fit the request body limit.
"""

from __future__ import annotations

from tchain.plans.document import MAX_INSTRUCTIONS, MAX_PARTICIPANTS

__all__ = ["LARGEST_LOG", "max_log_docs"]


def max_log_docs(contributors: int, instructions: int) -> int:
    """The most documents a log of a plan of this size can hold (see the module docstring)."""
    per_instruction = 2 + 3 * (contributors - 1)
    return 1 + 2 * contributors + instructions * per_instruction + contributors + \
        2 * contributors


LARGEST_LOG = max_log_docs(MAX_PARTICIPANTS, MAX_INSTRUCTIONS)
