"""A bank's two words on one question of a plan that mean different things (docs/adr/0014).

Each bank answers a plan's questions once: whether it takes part (``approval`` or
``rejection``), whether another bank's instruction n was done (``completion_approval`` or
``completion_rejection`` of n), and what it did of its own instruction n (its
``completion``). An honest bank signs one word per question, so two distinct signed words of
one bank on one question are its equivocation, whether they mean different things or the
same (two approvals of one completion, 1 ms apart: the tester's flood of 1998 of them,
docs/adr/0014, Update: attack 12): the pair, beside the plan's proposal, is a proof anyone
checks offline.

```
{"type": "plan_equivocation", "reporter", "reporter_name", "culprit", "culprit_name",
 "keys": {bank name: key}, "log": [proposal, first word, second word], "seq": n, "sig"}
```

``seq`` is the instruction the question is about (0: the plan itself). Not an equivocation:
an approval of an irreversible await or release after the same bank's word that it came late
(it is approved when done late, docs/adr/0012); but that word dated after the bank's approval
is one: it is how a bank rebuts a ``plan_default`` attested from a log cut short. Nor is the
payee bank's credit and its word that nothing came (a ``plan_contradiction``, which fails
the plan).
"""

from __future__ import annotations

from typing import Any

from tchain.errors import TChainError, VerificationError
from tchain.keys import SigningKey
from tchain.plans.execution import Execution
from tchain.plans.log import LogDoc
from tchain.plans.proof import checked_keys
from tchain.plans.questions import contradicts, question

__all__ = ["check_plan_equivocation", "contradicting", "equivocation_of",
           "plan_equivocation_proof", "question"]


def contradicting(execution: Execution, first: LogDoc, second: LogDoc) -> bool:
    """Whether two documents are one bank's different answers to one question of the plan."""
    return contradicts(execution.plan, first, second)


def equivocation_of(execution: Execution, doc: LogDoc) -> LogDoc | None:
    """The document of the log that ``doc`` contradicts, if one does."""
    return execution.contradicted(doc)


def plan_equivocation_proof(key: SigningKey, name: str, execution: Execution, first: LogDoc,
                            second: LogDoc) -> dict[str, Any]:
    """``name``'s signed proof that ``first.by`` said both ``first`` and ``second``."""
    asked = question(first)
    assert asked is not None and contradicting(execution, first, second)
    proof: dict[str, Any] = {
        "type": "plan_equivocation", "reporter": key.public_key, "reporter_name": name,
        "culprit": execution.keys[first.by], "culprit_name": first.by,
        "keys": {b: execution.keys[b] for b in execution.plan.banks},
        "log": [execution.docs[0].doc, first.doc, second.doc], "seq": asked[1]}
    proof["sig"] = key.sign("proof", proof)
    return proof


def check_plan_equivocation(proof: dict[str, Any]) -> tuple[str, str]:
    """Steps 2-4 of a plan equivocation's proof (step 1, its shape and the reporter's
    signature, is tchain.proofs): (2) the keys name the reporter and the culprit; (3) the
    log is the plan's proposal, under its bank's key, then two words signed by the culprit's
    key, of that plan; (4) they answer one question (about instruction ``seq``) differently.
    Returns the culprit's name and a summary.

    Raises:
        VerificationError: saying what does not hold.
    """
    keys = checked_keys(proof)
    culprit = proof["culprit_name"]
    if len(proof["log"]) != 3:
        raise VerificationError("a plan equivocation's log is the proposal and two words")
    try:
        proposal, first, second = (LogDoc.from_dict(d) for d in proof["log"])
        execution = Execution.start(proposal, keys)
        for word in (first, second):
            if word.by != culprit or word.plan != execution.plan.id or \
                    word.plan_digest != execution.plan.digest:
                raise VerificationError(f"both words must be {culprit}'s, on plan "
                                        f"{execution.plan.id}")
            word.verify(keys[culprit])
    except VerificationError:
        raise
    except TChainError as e:
        raise VerificationError(f"the plan equivocation does not hold: {e.message}") from e
    asked = question(first)
    if asked is None or asked[1] != proof["seq"] or \
            not 0 <= asked[1] <= len(execution.plan.instructions) or \
            not contradicting(execution, first, second):
        raise VerificationError(f"the two words are not {culprit}'s different answers to one "
                                f"question of plan {execution.plan.id} (about {proof['seq']})")
    about = "the plan" if asked[1] == 0 else f"instruction {asked[1]}"
    return culprit, (
        f"{culprit} signed two different words on {about} of plan {execution.plan.id}: a "
        f"{first.type} at {first.time} and a {second.type} at {second.time} (the banks' keys "
        f"attested by {proof['reporter_name']})")
