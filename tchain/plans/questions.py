"""The questions a plan asks each bank, and when two words of one bank answer one differently
(docs/adr/0014): what tchain.plans.execution needs to keep a bank's equivocation in the
log, and tchain.plans.equivocation to prove it offline."""

from __future__ import annotations

from tchain.plans.document import Instruction, Plan
from tchain.plans.log import LogDoc

__all__ = ["ZERO_COMPLETION", "contradicts", "owed", "question"]

ZERO_COMPLETION = "0" * 64  # what a rejection names when no completion came by the due

_YES = frozenset({"approval", "completion_approval"})


def owed(ins: Instruction) -> bool:
    """An irreversible await or release: it lands at no bank, so no bank's word that it came
    late can fail the plan (the other holds stand, each owed to a later step); the word is
    the ``plan_default`` proof, and the instruction done late is approved all the same, by
    the bank that said it was late too (docs/adr/0012)."""
    return not ins.reversible and ins.op in ("await", "release")


def question(doc: LogDoc) -> tuple[str, int] | None:
    """What ``doc`` answers, and about which instruction (0: the plan); None for a
    compensation (a bank's releases, checked against what stands)."""
    if doc.type in ("approval", "rejection"):
        return "plan", 0
    if doc.type in ("completion_approval", "completion_rejection"):
        return "decision", doc.body["seq"]
    if doc.type == "completion":
        return "completion", doc.body["seq"]
    if doc.type == "confirmation":
        return "confirmation", doc.body["seq"]
    return None


def contradicts(plan: Plan, first: LogDoc, second: LogDoc) -> bool:
    """Whether two documents are one bank's two words on one question of the plan that an
    honest bank never signs both of: any two, but "late" then approved of an owed step, and
    the payee bank's credit and its word that nothing came (a ``plan_contradiction``); and a
    confirmation beside a word it could not follow (:func:`_confirmed_and_not`)."""
    if first.by != second.by or first.id == second.id:
        return False
    if first.type == second.type == "confirmation":  # one word per question (attack 12)
        return bool(first.body["seq"] == second.body["seq"])
    if "confirmation" in (first.type, second.type):
        return _confirmed_and_not(first, second)
    asked = question(first)
    if asked is None or asked != question(second):
        return False
    # an honest bank signs one word per question, so two are its equivocation whatever they
    # say, even the same meaning twice (docs/adr/0014, Update: attack 12): only the two
    # honest pairs below are not
    if asked[0] == "decision" and (first.type in _YES) != (second.type in _YES):
        ins = plan.instruction(asked[1])
        no = second if first.type in _YES else first
        yes = first if no is second else second
        if owed(ins) and no.body["completion"] == ZERO_COMPLETION and no.time <= yes.time:
            # "late", then approved when done late; never "late" after its own approval
            # (the rebuttal of a default attested from a log cut short: docs/adr/0014)
            return False
        if ins.lands_at == first.by and ins.op == "transfer":
            return False  # the payee bank's contradiction: tchain.plans.proof
    return True


def _confirmed_and_not(first: LogDoc, second: LogDoc) -> bool:
    """A bank confirms only when its log shows every instruction before the first
    irreversible one done and approved, and no rejection (docs/adr/0014): its rejection of
    the plan, its rejection of one of those instructions, or its failed completion of one,
    contradicts its confirmation, whichever it signed first."""
    confirmation, other = (first, second) if first.type == "confirmation" else (second, first)
    if other.type == "rejection":
        return True
    before = other.type in ("completion_rejection", "completion") and \
        other.body["seq"] < confirmation.body["seq"]
    return before and (other.type == "completion_rejection" or
                       other.body["status"] == "failed")
