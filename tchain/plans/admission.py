"""What a peer's plan log must show of its own documents before a bank takes any of it
(docs/protocol.md §14; the outside tester's twelfth round, Finding 6): checks on the documents
alone, so every bank finds the same, and so a message that breaks one proves its sender's
misconduct (tchain.peer_claims.fault): an honest bank never signs such a word, nor relays one,
since it refuses it on receipt.

- A ``rejection`` or ``completion_rejection`` gives a §6 code as its ``error`` (the tester's
  ``"zzz"`` was taken).
- No word carries more than its kind needs in this plan: a completion one receipt at most, an
  approval the consents to its bank's holds and the records of the addresses the plan names
  there, a compensation a release per hold of its bank. A word kept as its bank's
  equivocation changes nothing and is not checked further, so without this a liar's second
  word could carry a hundred receipts, and a log the bytes of no message (docs/adr/0014,
  Update: attack 12; tchain.plans.bounds).
- No word is dated before the plan's ``time``, nor a decision before the completion it names
  (the turn of the next instruction starts at an approval's date, docs/adr/0014), each by
  more than two clocks may differ (CLOCK_MARGIN_MS): an honest bank whose clock is a little
  behind its peer's still signs after it learned the plan or the completion.
"""

from __future__ import annotations

from collections.abc import Container, Iterable

from tchain.errors import BadRequestError, MisconductError, wire_errors
from tchain.flow_states import CLOCK_MARGIN_MS
from tchain.plans.document import Plan
from tchain.plans.log import LogDoc

__all__ = ["check_words", "misdated_or_miscoded"]


def misdated_or_miscoded(plan: Plan, known: Iterable[LogDoc], docs: Iterable[LogDoc]
                         ) -> str | None:
    """What is wrong with the first document of ``docs`` that breaks the rules above, or
    None. ``known`` are the documents a decision's completion is looked up in (the log and
    ``docs``)."""
    completions = {d.id: d for d in known if d.type == "completion"}
    codes = wire_errors()
    plan_time = plan.time
    for doc in docs:
        most = _most(plan, doc)
        if most is not None:
            return most
        if doc.type in ("rejection", "completion_rejection") and doc.body["error"] not in codes:
            return f"{doc.by}'s {doc.type} gives {doc.body['error']!r}, not a §6 error code"
        if doc.type == "completion" and not _coded(plan, doc, codes):
            return (f"{doc.by}'s failed completion of instruction {doc.body['seq']} gives "
                    f"{doc.body['error']!r}, not a §6 error code (nor a transfer's "
                    "'refused' with its release)")
        if doc.type != "proposal" and doc.time < plan_time - CLOCK_MARGIN_MS:
            return f"{doc.by}'s {doc.type} is dated {doc.time}, before the plan's time {plan_time}"
        named = completions.get(doc.body.get("completion", "")) \
            if doc.type in ("completion_approval", "completion_rejection") else None
        if named is not None and doc.time < named.time - CLOCK_MARGIN_MS:
            return (f"{doc.by}'s {doc.type} of instruction {doc.body['seq']} is dated "
                    f"{doc.time}, before the completion it answers ({named.time})")
    return None


def _coded(plan: Plan, doc: LogDoc, codes: Container[str]) -> bool:
    """Whether a completion's ``error`` is one §14 allows: none when done; a §6 code (the
    chain's refusal of a hold or issue, the decider's abort: ``conflict``, ``expired``);
    or ``refused``, a transfer's payee bank's refusal, carrying the hold's release."""
    error, seq = doc.body["error"], doc.body["seq"]
    if doc.body["status"] == "done" or error in codes:
        return True
    return error == "refused" and bool(doc.body["receipts"]) and \
        1 <= seq <= len(plan.instructions) and plan.instruction(seq).op == "transfer"


def _most(plan: Plan, doc: LogDoc) -> str | None:
    """What ``doc`` carries beyond what its kind needs in ``plan``, if anything."""
    holds, named = len(plan.holds(doc.by)), len(plan.named(doc.by))
    counts = {"completion": (("receipts", 1),),
              "approval": (("consents", holds), ("records", named)),
              "compensation": (("receipts", holds),)}.get(doc.type, ())
    for name, most in counts:
        if len(doc.body[name]) > most:
            return (f"{doc.by}'s {doc.type} carries {len(doc.body[name])} {name}, more than "
                    f"the {most} plan {plan.id} asks of it")
    return None


def check_words(plan: Plan, sent: Iterable[LogDoc], log: Iterable[LogDoc]) -> None:
    """Refuse a peer's log ``sent`` one of whose documents new to ``log`` (ours) breaks the
    rules above: as misconduct when the message alone shows it (a decision's completion is
    in it too), else plainly (the completion is in our log only: no third party would see
    it from the message).

    Raises:
        MisconductError: a ``bad_request``, naming the document; BadRequestError: the same,
        shown by our log.
    """
    sent, log = list(sent), list(log)
    had = {d.id for d in log}
    new = [d for d in sent if d.id not in had]
    wrong = misdated_or_miscoded(plan, sent, new)
    if wrong is not None:
        raise MisconductError.of(BadRequestError(wrong))
    wrong = misdated_or_miscoded(plan, [*log, *sent], new)
    if wrong is not None:
        raise BadRequestError(wrong)
