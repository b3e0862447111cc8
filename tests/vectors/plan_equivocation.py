"""The golden vector of a plan equivocation (docs/protocol.md §14, docs/adr/0014): bank2
(seed ``04`` x 32) approves alice's hold (instruction 1) of the DvP of tests/vectors/
plans.json and rejects it too; bank1 (seed ``01`` x 32) signs the proof of it. Every byte is
fixed: Ed25519 signatures are deterministic (run: python3 -m tests.vectors.generate)."""

from __future__ import annotations

from typing import Any

from tchain.digest import digest
from tchain.keys import SigningKey
from tchain.plans import Execution, Plan, plan_document, plan_id, sign_log
from tchain.plans.equivocation import plan_equivocation_proof
from tests.vectors.generate import BANK, PLAN_FILE, PLAN_UUID, SEEDS, T0

BANK2, BANK3 = "bank2.example", "bank3.example"
COMPLETION = "ab" * 32  # the id of bank1's completion of the hold (any one: not replayed)


def plan_equivocation_vector() -> dict[str, Any]:
    bank1 = SigningKey(bytes.fromhex(SEEDS["bank"]))
    bank2, bank3 = SigningKey(bytes.fromhex("04" * 32)), SigningKey(bytes.fromhex("05" * 32))
    plan = Plan.from_dict(plan_document(PLAN_FILE, plan_id_=plan_id(BANK, PLAN_UUID),
                                        proposer=f"alice*{BANK}", time=T0 + 400))
    proposal = sign_log(bank1, "proposal", plan=plan.id, plan_digest=plan.digest, by=BANK,
                        time=T0 + 400, document=plan.doc)
    keys = {BANK: bank1.public_key, BANK2: bank2.public_key, BANK3: bank3.public_key}
    yes = sign_log(bank2, "completion_approval", plan=plan.id, plan_digest=plan.digest,
                   by=BANK2, time=T0 + 800, seq=1, completion=COMPLETION)
    no = sign_log(bank2, "completion_rejection", plan=plan.id, plan_digest=plan.digest,
                  by=BANK2, time=T0 + 801, seq=1, completion=COMPLETION, error="bad_request",
                  reason="not this hold")
    proof = plan_equivocation_proof(bank1, BANK, Execution.start(proposal, keys), yes, no)
    return {"seeds": {"bank1": SEEDS["bank"], "bank2": "04" * 32, "bank3": "05" * 32},
            "proof": proof, "proof_digest": digest("proof", proof).hex()}
