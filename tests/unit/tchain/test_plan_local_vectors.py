"""The golden vector of a plan done inside one bank (tests/vectors/plan_local.json): the
generator makes it again byte for byte, its log replays to ``completed``, both chains verify
offline, the receipts are what §14 says, and the protocol page prints the issue's credit."""

from __future__ import annotations

import json
from pathlib import Path

from tchain.model import SignedEntry
from tchain.plans import Execution, LogDoc
from tchain.verify import verify_chain
from tests.vectors.plan_local import plan_local_vector

ROOT = Path(__file__).parents[3]
LOCAL = json.loads((ROOT / "tests" / "vectors" / "plan_local.json").read_text("utf-8"))
PROTOCOL = (ROOT / "docs" / "protocol.md").read_text("utf-8")


def test_the_generator_reproduces_the_local_plan_vector_exactly():
    assert plan_local_vector() == LOCAL


def test_the_local_plan_replays_completed_and_its_chains_verify():
    bank, key = LOCAL["validator_name"], LOCAL["validator_key"]
    ex = Execution.replay([LogDoc.from_dict(d) for d in LOCAL["log"]], {bank: key})
    assert ex.state == LOCAL["state"] == "completed"
    for name in ("alice", "bob"):
        verify_chain(LOCAL["entries"][name], key, bank, LOCAL["chains"][name])
    paid, issued = (SignedEntry.from_dict(e) for e in LOCAL["entries"]["bob"][1:])
    hold, settle = (SignedEntry.from_dict(e) for e in LOCAL["entries"]["alice"][2:])
    assert paid.kind == "credit" and paid.evidence_entry(0).id == hold.id
    assert settle.kind == "settle" and settle.evidence_entry(0).id == paid.id
    issue = issued.evidence_entry(0)
    assert issue.kind == "issue"
    assert issue.intent.body.memo == f"plan {LOCAL['plan']['id']} instruction 3"
    assert [d.receipts()[-1].id for d in ex.docs if d.type == "completion"] == \
        [hold.id, settle.id, issued.id]


def test_the_protocol_page_prints_the_issue_of_the_local_plan():
    section = PROTOCOL[PROTOCOL.index("## 14."):]
    issued = LOCAL["entries"]["bob"][-1]
    assert "```json\n" + json.dumps(issued, indent=2) + "\n```" in section
    assert f"`{LOCAL['plan']['id']}`" in section
