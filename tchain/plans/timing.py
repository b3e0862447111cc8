"""What a bank checks of a plan's times against its own clock (docs/protocol.md §14, "Time";
docs/adr/0012): a peer dates its documents, and a date is a claim like any other.

A document dated ahead of this bank's clock by more than two clocks may differ is refused (its
sender sends the log again later, and it is taken then): otherwise a bank could date an await's
completion at its ``until``, or a word that nothing came after the due, before either came. A
proposal is dated within the intent window of the receiver's clock, and its deadline is at
most 30 days after it (as an offer's): the due of every irreversible step is as long as
``deadline - time``, so an unbounded one would make a default never provable.
"""

from __future__ import annotations

from collections.abc import Iterable

from tchain.errors import BadRequestRuleError, StaleTimeError
from tchain.flow_states import CLOCK_MARGIN_MS
from tchain.plans.bounds import check_size
from tchain.plans.document import Plan
from tchain.plans.log import LogDoc
from tchain.rules import MAX_OFFER_MS, TIME_WINDOW_MS

__all__ = ["MAX_PLAN_MS", "check_dated", "check_fresh", "counts_until"]

MAX_PLAN_MS = MAX_OFFER_MS  # a plan's deadline is at most 30 days after its time


def check_dated(docs: Iterable[LogDoc], now: int) -> None:
    """Refuse a log any document of which is dated ahead of ``now`` by more than the skew.

    Raises:
        StaleTimeError: naming the first such document.
    """
    for doc in docs:
        if doc.time > now + CLOCK_MARGIN_MS:
            raise StaleTimeError(f"the {doc.type} of plan {doc.plan} by {doc.by} is dated "
                                 f"{doc.time}, ahead of this bank's clock {now}: send it again "
                                 "once its time came", validator_time=now)


def check_fresh(plan: Plan, now: int) -> None:
    """A plan new here: dated within the intent window of ``now``, no larger than a log of
    it could be sent whole (tchain.plans.bounds), its deadline within MAX_PLAN_MS of its
    time, and, being new, proposed since the confirmation round, so with ``confirm``: a
    plan without it runs under the rules before the round, whose races one side paid and the
    other released (docs/adr/0014, Update "attack 14"); a plan kept before replays as it did.

    Raises:
        StaleTimeError: its time is outside the window; BadRequestRuleError: it is too
        large, its deadline too far, or it has no ``confirm``.
    """
    if abs(plan.time - now) > TIME_WINDOW_MS:
        raise StaleTimeError(f"plan {plan.id} is dated {plan.time}, more than "
                             f"{TIME_WINDOW_MS} ms from {now}", validator_time=now)
    check_size(plan)
    if plan.deadline - plan.time > MAX_PLAN_MS:
        raise BadRequestRuleError(f"plan {plan.id}'s deadline {plan.deadline} is more than "
                                  f"{MAX_PLAN_MS} ms after its time {plan.time}")
    if not plan.confirm:
        raise BadRequestRuleError(f"plan {plan.id} has no \"confirm\": true; every plan new "
                                  "to a bank is proposed since the confirmation round")


def counts_until(plan: Plan) -> int:
    """Until when a plan not over counts against its proposer's (or its bank's customers')
    open plans (docs/adr/0014): by then every instruction done in its time would have been
    done (each irreversible one is due as long again after the one before, an await after
    its ``until``), so a plan still open was wedged by a bank that did not act, proven or
    not. It is kept and still goes on if that bank acts late; it no longer blocks new ones."""
    until = max((i.until for i in plan.instructions if i.op == "await" and i.until),
                default=plan.time)
    span = plan.deadline - plan.time
    return max(plan.deadline, until) + len(plan.instructions) * span
