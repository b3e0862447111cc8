"""The proof that a bank did not do its instruction of a plan once value had started to move
(docs/protocol.md §14, §12): the plan's log up to the reporter's word that nothing came by
when it was due, and the banks' keys it was checked with. Anyone replays the log offline.

```
{"type": "plan_default", "reporter", "reporter_name", "culprit", "culprit_name",
 "keys": {bank name: key}, "log": [signed log documents, the reporter's rejection last],
 "seq": n, "sig"}
```

The log proves itself (every document is signed by the bank it names); the keys are the
reporter's pins of its peers, so which key is which bank's is attested by the reporter, as
a position is in a misconduct proof.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tchain.errors import TChainError, VerificationError
from tchain.keys import SigningKey, is_hex
from tchain.plans.confirmation import waits_for_confirmations
from tchain.plans.execution import Execution
from tchain.plans.log import LogDoc

__all__ = ["PLAN_DEFAULT_FIELDS", "check_plan_contradiction", "check_plan_default",
           "plan_default_proof"]

PLAN_DEFAULT_FIELDS = {"type", "reporter", "reporter_name", "culprit", "culprit_name", "keys",
                       "log", "seq", "sig"}


def plan_default_proof(key: SigningKey, name: str, execution: Execution, seq: int,
                       culprit: str | None = None, type_: str = "plan_default"
                       ) -> dict[str, Any]:
    """``name``'s signed account of instruction ``seq`` not done: ``execution``'s log ends
    with its zero ``completion_rejection`` of it. With ``type_`` ``plan_contradiction``: the
    log holds ``culprit``'s credit of transfer ``seq`` and its word that nothing came."""
    culprit = culprit or execution.plan.instruction(seq).bank
    proof: dict[str, Any] = {
        "type": type_, "reporter": key.public_key, "reporter_name": name,
        "culprit": execution.keys[culprit], "culprit_name": culprit,
        "keys": {b: execution.keys[b] for b in execution.plan.banks},
        "log": [d.doc for d in execution.docs], "seq": seq}
    proof["sig"] = key.sign("proof", proof)
    return proof


def check_plan_default(proof: dict[str, Any]) -> tuple[str, str]:
    """Steps 2-4 of a plan default's proof (its shape and the reporter's signature are step
    1, tchain.proofs): (2) the keys name the reporter and the culprit; (3) the log replays,
    every document under its bank's key; (4) before its last document, instruction ``seq`` is
    the culprit's, irreversible, its turn, with no completion (and, if it is the first
    irreversible one of a plan with ``confirm``, every contributor's confirmation in the
    log: before that its bank waits, docs/adr/0014); the last is the reporter's
    rejection of it naming no completion, dated after it was due. Returns the culprit's name
    and a summary.

    Raises:
        VerificationError: saying what does not hold.
    """
    docs, before = _replayed(proof)
    seq = proof["seq"]
    word, turn, due = docs[-1], before.turn(), before.due()
    if turn is None or turn.seq != seq or turn.bank != proof["culprit_name"] or \
            turn.reversible or before.instructions[seq].completion is not None or \
            waits_for_confirmations(before, turn):  # its bank waited: docs/adr/0014
        raise VerificationError(f"instruction {seq} was not the culprit's irreversible "
                                "instruction, due and not done, when the log ends")
    if word.type != "completion_rejection" or word.by != proof["reporter_name"] or \
            word.body["seq"] != seq or word.body["completion"] != "0" * 64 or \
            due is None or word.time <= due:
        raise VerificationError("the log must end with the reporter's word that nothing came "
                                f"of instruction {seq} by when it was due")
    return proof["culprit_name"], (
        f"{proof['culprit_name']} did not do instruction {seq} ({turn.op}) of plan "
        f"{before.plan.id}, due at {due}, after every instruction before it was done; "
        f"{proof['reporter_name']} said so at {word.time} (the banks' keys attested by "
        f"{proof['reporter_name']})")


def check_plan_contradiction(proof: dict[str, Any]) -> tuple[str, str]:
    """Steps 2-4 of a plan contradiction's proof (docs/adr/0012): (2) and (3) as for a
    default; (4) instruction ``seq`` is a transfer between two banks paid to the culprit's
    customer, its completion logged done (its receipt carries the culprit's signed credit,
    checked as the log replays), and the culprit's word that nothing came of it is logged too:
    an honest payee bank says one or the other, never both. Returns the culprit's name and a
    summary.

    Raises:
        VerificationError: saying what does not hold.
    """
    _, execution = _replayed(proof, whole=True)
    seq, culprit = proof["seq"], proof["culprit_name"]
    if not 1 <= seq <= len(execution.plan.instructions):
        raise VerificationError(f"the plan has no instruction {seq}")
    ins, st = execution.plan.instruction(seq), execution.instructions.get(seq)
    if ins.op != "transfer" or ins.lands_at in (None, ins.bank) or ins.lands_at != culprit or \
            st is None or st.completion is None or st.completion.body["status"] != "done" or \
            culprit not in st.rejections:
        raise VerificationError(f"the log must hold both {culprit}'s credit of transfer {seq} "
                                "(its completion, done) and its word that nothing came")
    return culprit, (
        f"{culprit} credited transfer {seq} of plan {execution.plan.id} (its signed credit is "
        f"the completion's receipt) and signed that nothing came of it: the plan failed on "
        f"its word (the banks' keys attested by {proof['reporter_name']})")


def checked_keys(proof: dict[str, Any]) -> Mapping[str, str]:
    """A plan proof's keys, checked to name the reporter and the culprit, two banks, and its
    log (at least two documents) and seq to have their shapes.

    Raises:
        VerificationError: they do not.
    """
    keys, seq = proof["keys"], proof["seq"]
    if not isinstance(keys, Mapping) or not all(isinstance(k, str) and is_hex(v, 64)
                                                 for k, v in keys.items()) or \
            keys.get(proof["reporter_name"]) != proof["reporter"] or \
            keys.get(proof["culprit_name"]) != proof["culprit"] or \
            proof["reporter"] == proof["culprit"]:
        raise VerificationError("the keys must name the reporter and the culprit, two banks")
    if not isinstance(proof["log"], list) or len(proof["log"]) < 2 or \
            not isinstance(seq, int) or isinstance(seq, bool):
        raise VerificationError("a plan proof carries the plan's log and a seq")
    return keys


def _replayed(proof: dict[str, Any], whole: bool = False) -> tuple[list[LogDoc], Execution]:
    """The proof's log documents and the execution they give (all of them with ``whole``,
    else all but the last), its keys checked to name the reporter and the culprit.

    Raises:
        VerificationError: the keys or the log do not hold.
    """
    keys = checked_keys(proof)
    try:
        docs = [LogDoc.from_dict(d) for d in proof["log"]]
        whole_log = Execution.replay(docs, keys)
        return docs, whole_log if whole else Execution.replay(docs[:-1], keys)
    except TChainError as e:
        raise VerificationError(f"the plan's log does not replay: {e.message}") from e
