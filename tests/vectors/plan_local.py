"""The golden vector of a plan done inside one bank (docs/protocol.md §14, docs/adr/0011):
alice at bank1 pays bob, a customer of the same bank, 1000 USD out of her plan hold (one
write: bob's credit, the hold's settle), then bank1 issues bob 5 USD at delivery (its issue,
memo naming the plan and instruction, and bob's credit). Made by the bank's own code on a fixed
clock and fixed keys (run: python3 -m tests.vectors.generate)."""

from __future__ import annotations

import tempfile
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any
from unittest import mock

from tchain.encoding import parse
from tchain.intents import sign_intent
from tchain.keys import SigningKey
from tchain.plans import LogDoc, Plan, consents_of, plan_document, plan_id
from tchain.plans.timing import check_fresh
from tests.vectors.generate import BANK, SEEDS, T0, USD, _bank_of_alice_and_bob
from validator.plans import Plans

LOCAL_UUID = uuid.UUID("0b9e4c1a-7d2f-4e8b-a6c3-5f1d2e3c4b5a")
LOCAL_FILE = {
    "deadline_in": 600_000,
    "participants": [{"bank": BANK, "role": "contributor"}],
    "instructions": [
        {"op": "hold", "account": f"alice*{BANK}", "asset": USD, "amount": "1000"},
        {"op": "transfer", "hold": 1, "to": f"bob*{BANK}"},
        {"op": "issue", "account": BANK, "asset": USD, "amount": "5", "to": f"bob*{BANK}"}],
}


CONFIRM_UUID = uuid.UUID("3c5e7a9b-1d2f-4a6b-8c0d-2e4f6a8b0c1d")


def _document(confirm: bool) -> Any:
    """The plan document as the bank makes it, with or without ``confirm``: plan_local.json
    is a plan proposed before the confirmation round (docs/adr/0014's Update) and keeps its
    bytes, so an old log is shown to replay to the same state."""
    return lambda file, **fields: plan_document(file, **{**fields, "confirm": confirm})


def _admitted_as_before(plan: Plan, now: int) -> None:
    """check_fresh as a bank ran it before the confirmation round: plan_local.json is made by
    the bank's own code, and a plan new to a bank now needs ``confirm`` (docs/adr/0014,
    Update "attack 14"); every other check of a new plan still runs."""
    check_fresh(replace(plan, confirm=True), now)


def plan_confirmation_vector() -> dict[str, Any]:
    """The same plan proposed with ``confirm``: its log has bank1's confirmation of
    instruction 2 (the first irreversible one) before bank1 does it (docs/protocol.md §14)."""
    out = plan_local_vector(confirm=True, uid=CONFIRM_UUID)
    [confirmation] = [d for d in out["log"] if d["log"]["type"] == "confirmation"]
    return {**out, "confirmation": confirmation,
            "confirmation_id": LogDoc.from_dict(confirmation).id}


def plan_local_vector(confirm: bool = False, uid: uuid.UUID = LOCAL_UUID) -> dict[str, Any]:
    keys = {n: SigningKey(bytes.fromhex(s)) for n, s in SEEDS.items()}
    with tempfile.TemporaryDirectory() as tmp:
        ledger, alice, bob = _bank_of_alice_and_bob(Path(tmp), keys, T0 + 100_000)
        ledger.deposit(f"alice*{BANK}", USD, 5000)
        plans = Plans(ledger)
        with mock.patch("validator.plans.plan_id", lambda bank: plan_id(bank, uid)), \
                mock.patch("validator.plans.plan_document", _document(confirm)), \
                mock.patch("validator.plans.check_fresh", _admitted_as_before):
            execution, _ = plans.propose(keys["alice"].public_key, LOCAL_FILE)
        plan = execution.plan
        [(_, body)] = consents_of(plan, f"alice*{BANK}")
        consent = sign_intent(keys["alice"], "plan", alice.id, 0, T0 + 5_000, body)
        execution, _ = plans.consent(plan.id, {"consents": [consent]})
        with ledger.store.read() as r:
            chains = {"alice": [parse(e) for e in r.entries(alice.id, 0, 10)],
                      "bob": [parse(e) for e in r.entries(bob.id, 0, 10)]}
        ledger.store.close()
    return {"validator_name": BANK, "validator_key": keys["bank"].public_key, "seeds": SEEDS,
            "plan": plan.doc, "plan_digest": plan.digest, "state": execution.state,
            "log": [d.doc for d in execution.docs],
            "chains": {"alice": alice.id, "bob": bob.id}, "entries": chains}
