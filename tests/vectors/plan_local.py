"""The golden vector of a plan done inside one bank (docs/protocol.md §14, docs/adr/0011):
alice at bank1 pays bob, a customer of the same bank, 1000 USD out of her plan hold (one
write: bob's credit, the hold's settle), then bank1 issues bob 5 USD at delivery (its issue,
memo naming the plan and instruction, and bob's credit). Made by the bank's own code on a fixed
clock and fixed keys (run: python3 -m tests.vectors.generate)."""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path
from typing import Any
from unittest import mock

from tchain.encoding import parse
from tchain.intents import sign_intent
from tchain.keys import SigningKey
from tchain.plans import consents_of, plan_document, plan_id
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


def _before_confirmation(file: Any, **fields: Any) -> dict[str, Any]:
    """The plan document as banks proposed it before docs/adr/0015 (no ``confirm``): the
    vector keeps its bytes, and shows an old log still replays to the same state."""
    return plan_document(file, **{**fields, "confirm": False})


def plan_local_vector() -> dict[str, Any]:
    keys = {n: SigningKey(bytes.fromhex(s)) for n, s in SEEDS.items()}
    with tempfile.TemporaryDirectory() as tmp:
        ledger, alice, bob = _bank_of_alice_and_bob(Path(tmp), keys, T0 + 100_000)
        ledger.deposit(f"alice*{BANK}", USD, 5000)
        plans = Plans(ledger)
        with mock.patch("validator.plans.plan_id", lambda bank: plan_id(bank, LOCAL_UUID)), \
                mock.patch("validator.plans.plan_document", _before_confirmation):
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
