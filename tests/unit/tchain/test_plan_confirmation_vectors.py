"""The golden vector of a plan with a confirmation round (tests/vectors/plan_confirmation.json,
docs/protocol.md §14, docs/adr/0014's Update "the confirmation round"): the generator makes it
again byte for byte, its log replays to ``completed`` with bank1's confirmation before its
first irreversible step, §14 prints the confirmation, and the core refuses that step without
it. The vector of the same plan proposed before the round (plan_local.json) replays as it
did, with no confirmation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tchain.errors import BadRequestError, ConflictError
from tchain.keys import SigningKey
from tchain.plans import Execution, LogDoc, sign_log
from tests.vectors.plan_local import plan_confirmation_vector

ROOT = Path(__file__).parents[3]
VECTOR = json.loads((ROOT / "tests" / "vectors" / "plan_confirmation.json").read_text("utf-8"))
LOCAL = json.loads((ROOT / "tests" / "vectors" / "plan_local.json").read_text("utf-8"))
KEYS = {VECTOR["validator_name"]: VECTOR["validator_key"]}
DOCS = [LogDoc.from_dict(d) for d in VECTOR["log"]]


def test_the_generator_reproduces_the_confirmation_vector_exactly() -> None:
    assert plan_confirmation_vector() == VECTOR


def test_the_log_replays_completed_with_the_confirmation_before_the_first_transfer() -> None:
    ex = Execution.replay(DOCS, KEYS)
    assert ex.plan.confirm and ex.plan.doc["confirm"] is True
    assert ex.state == VECTOR["state"] == "completed"
    assert ex.to_dict()["confirmed_by"] == [VECTOR["validator_name"]]
    kinds = [(d.type, d.body.get("seq")) for d in DOCS]
    assert kinds.index(("confirmation", 2)) < kinds.index(("completion", 2))
    assert DOCS[kinds.index(("confirmation", 2))].id == VECTOR["confirmation_id"]


def test_a_plan_proposed_before_the_round_replays_without_one() -> None:
    old = Execution.replay([LogDoc.from_dict(d) for d in LOCAL["log"]],
                           {LOCAL["validator_name"]: LOCAL["validator_key"]})
    assert "confirm" not in LOCAL["plan"] and not old.plan.confirm
    assert old.state == "completed" and "confirmed_by" not in old.to_dict()


def test_the_first_irreversible_step_is_refused_before_every_confirmation() -> None:
    at = next(i for i, d in enumerate(DOCS) if d.type == "confirmation")
    before = Execution.replay(DOCS[:at], KEYS)
    with pytest.raises(ConflictError, match="confirmed"):
        before.append(DOCS[at + 1])


def test_a_confirmation_of_another_instruction_is_refused() -> None:
    at = next(i for i, d in enumerate(DOCS) if d.type == "confirmation")
    before = Execution.replay(DOCS[:at], KEYS)
    key = SigningKey(bytes.fromhex(VECTOR["seeds"]["bank"]))
    wrong = sign_log(key, "confirmation", plan=before.plan.id, plan_digest=before.plan.digest,
                     by=VECTOR["validator_name"], time=DOCS[at].time, seq=3)
    with pytest.raises(BadRequestError, match="confirms instruction 2"):
        before.append(wrong)


def test_the_protocol_page_prints_the_confirmation() -> None:
    protocol = (ROOT / "docs" / "protocol.md").read_text("utf-8")
    section = protocol[protocol.index("## 14."):]
    assert "```json\n" + json.dumps(VECTOR["confirmation"], indent=2) + "\n```" in section
    assert f"`{VECTOR['confirmation_id']}`" in section
