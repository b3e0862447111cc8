"""Taking a peer's plan log into ours (docs/protocol.md §14, docs/adr/0014).

A log is never refused whole because one of its documents contradicts what this bank holds:
a bank that signs two different words on one question and tells each honest bank one would
otherwise cut the honest banks off from each other's later words for good, and they would
never converge. So what fits is appended, in the sender's order. A word that contradicts a
word of the same bank in the log is appended too, kept beside it as that bank's
equivocation (tchain.plans.execution: the plan then ends the same way at every bank holding
both), and returned for the caller to keep its proof (tchain.plans.equivocation). Any other
document that conflicts (``ConflictError``: a word on a plan that is over, a step out of
turn) is left out and changes nothing. Only when nothing of the log was new and something
conflicted is the message refused (``conflict``), so a lone lie is still answered as one."""

from __future__ import annotations

from collections.abc import Iterable

from tchain.errors import ConflictError
from tchain.plans.execution import Execution
from tchain.plans.log import LogDoc

__all__ = ["append_what_fits"]


def append_what_fits(execution: Execution, docs: Iterable[LogDoc]
                     ) -> tuple[Execution, list[tuple[LogDoc, LogDoc]], ConflictError | None]:
    """``execution`` with every document of ``docs`` that fits appended, in order; the pairs
    (the log's word, the other) that are a bank's equivocation new in it; and the first
    conflict when nothing of ``docs`` was new (the caller refuses the log with it). Any
    other error of :meth:`Execution.append` (a bad signature, a document that is not the
    plan's) is raised: the log is refused whole."""
    had, proven, conflict = len(execution.docs), len(execution.equivocations), None
    for doc in docs:
        try:
            execution = execution.append(doc)  # a contradicting word is kept: docs/adr/0014
        except ConflictError as e:
            conflict = conflict or e
    twice = list(execution.equivocations[proven:])
    return execution, twice, conflict if len(execution.docs) == had else None
