"""The golden vector of a plan equivocation (tests/vectors/plan_equivocation.json,
docs/adr/0014): the generator reproduces it byte for byte, ``tchain proof verify`` accepts it
against bank2, §14 prints its digest, a proof whose two words mean the same proves it too
(docs/adr/0014, Update: attack 12), and one whose words are one, are of two instructions, or
are not both the culprit's, is refused."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from tchain.errors import VerificationError
from tchain.keys import SigningKey
from tchain.plans import Execution, LogDoc, sign_log
from tchain.plans.equivocation import contradicting
from tchain.proofs import verify_proof
from tchain.records import make_record
from tests.vectors.plan_equivocation import plan_equivocation_vector

ROOT = Path(__file__).parents[3]
VECTOR = json.loads((ROOT / "tests" / "vectors" / "plan_equivocation.json").read_text("utf-8"))
BANK1 = SigningKey(bytes.fromhex(VECTOR["seeds"]["bank1"]))
BANK2 = SigningKey(bytes.fromhex(VECTOR["seeds"]["bank2"]))


def test_the_generator_reproduces_the_plan_equivocation_vector() -> None:
    assert plan_equivocation_vector() == VECTOR


def test_the_vector_proves_bank2_and_the_protocol_page_prints_it() -> None:
    summary = verify_proof(VECTOR["proof"])
    assert summary.type == "plan_equivocation" and summary.culprit == BANK2.public_key
    protocol = (ROOT / "docs" / "protocol.md").read_text("utf-8")
    assert f"`{VECTOR['proof_digest']}`" in protocol[protocol.index("## 14."):]


def _second(**changes: Any) -> dict[str, Any]:
    """The proof with its second word signed anew with ``changes`` (by bank2, unless a
    ``key`` is given), re-signed by bank1."""
    proof = copy.deepcopy(VECTOR["proof"])
    first = LogDoc.from_dict(proof["log"][2])
    key = changes.pop("key", BANK2)
    fields = {**first.body, **changes}
    kind = fields.pop("type", first.type)
    if kind == "completion_approval":
        fields = {k: fields[k] for k in ("seq", "completion")}
    proof["log"][2] = sign_log(key, kind, plan=first.plan, plan_digest=first.plan_digest,
                               by=first.by, time=first.time, **fields).doc
    del proof["sig"]
    proof["sig"] = BANK1.sign("proof", proof)
    return proof


@pytest.mark.parametrize("changes", [
    {"seq": 2},  # another question
    {"key": SigningKey(bytes.fromhex("06" * 32))},  # not bank2's signature
], ids=["another instruction", "another key"])
def test_a_pair_that_is_not_one_banks_two_answers_proves_nothing(changes: dict[str, Any]
                                                                 ) -> None:
    with pytest.raises(VerificationError):
        verify_proof(_second(**changes))


def test_one_word_twice_proves_nothing() -> None:
    proof = copy.deepcopy(VECTOR["proof"])
    proof["log"][2] = proof["log"][1]
    del proof["sig"]
    proof["sig"] = BANK1.sign("proof", proof)
    with pytest.raises(VerificationError, match="different answers"):
        verify_proof(proof)


def test_two_words_of_one_meaning_are_an_equivocation() -> None:
    """An honest bank signs one word per question (docs/adr/0014, Update: attack 12): two
    approvals of one completion, dated apart, prove bank2 lied as two opposite words do."""
    summary = verify_proof(_second(type="completion_approval"))
    assert summary.type == "plan_equivocation" and summary.culprit == BANK2.public_key


def test_a_changed_byte_breaks_the_reporters_signature() -> None:
    proof = copy.deepcopy(VECTOR["proof"])
    proof["seq"] = 2
    with pytest.raises(VerificationError, match="signature"):
        verify_proof(proof)


def test_two_approvals_of_the_plan_contradict_whatever_they_carry() -> None:
    """Two approvals of the plan 1 ms apart, or carrying other key records (so other consents
    could stand behind the same holds), are two words on one question: proven (docs/adr/0014,
    Update: attack 12). One approval twice is one word."""
    proposal = LogDoc.from_dict(VECTOR["proof"]["log"][0])
    execution = Execution.start(proposal, VECTOR["proof"]["keys"])

    def approval(time: int, chain: str) -> LogDoc:
        record = make_record(BANK2, address="bob*bank2.example", owner=BANK1.public_key,
                             chain=chain, validator="bank2.example")
        return sign_log(BANK2, "approval", plan=proposal.plan, plan_digest=proposal.plan_digest,
                        by="bank2.example", time=time, consents=[], records=[record])

    first = approval(1, "aa" * 32)
    assert contradicting(execution, first, approval(2, "aa" * 32))
    assert contradicting(execution, first, approval(2, "bb" * 32))
    assert not contradicting(execution, first, first)
