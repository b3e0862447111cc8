"""Taking a peer's plan log into ours (docs/protocol.md §14, docs/adr/0014).

A log is never refused whole because one of its documents contradicts what this bank holds:
a bank that signs two different words on one question and tells each honest bank one would
otherwise cut the honest banks off from each other's later words for good, and they would
never converge. So what fits is appended, in the sender's order; a document that conflicts
(``ConflictError``: a second word of its bank on a question it decided, or a word on a plan
that is over) is left out, and changes nothing; one that contradicts a word of the same bank
in the log is returned with it, for the caller to keep as its proof
(tchain.plans.equivocation). Only when nothing of the log was new, nor proves an
equivocation, and something conflicted is the message refused (``conflict``), so a lone lie
is still answered as one.
"""

from __future__ import annotations

from collections.abc import Iterable

from tchain.errors import ConflictError
from tchain.plans.equivocation import equivocation_of
from tchain.plans.execution import Execution
from tchain.plans.log import LogDoc

__all__ = ["append_what_fits"]


def append_what_fits(execution: Execution, docs: Iterable[LogDoc]
                     ) -> tuple[Execution, list[tuple[LogDoc, LogDoc]], ConflictError | None]:
    """``execution`` with every document of ``docs`` that fits appended, in order; the pairs
    (the log's word, the word left out) that are a bank's equivocation; and the first
    conflict when nothing of ``docs`` was new (the caller refuses the log with it unless one
    of those pairs is news to it). Any other error of :meth:`Execution.append` (a bad
    signature, a document that is not the plan's) is raised: the log is refused whole."""
    had, conflict, twice = len(execution.docs), None, []
    for doc in docs:
        try:
            execution = execution.append(doc)
        except ConflictError as e:
            conflict = conflict or e
            first = equivocation_of(execution, doc)
            if first is not None:
                twice.append((first, doc))
    return execution, twice, conflict if len(execution.docs) == had else None
