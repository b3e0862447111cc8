"""Plans for tests and vectors: a two-bank DvP with an observer, its consents and approvals,
made from fixed keys and a fixed clock (so the golden vectors can be made from it too)."""

from __future__ import annotations

import copy
from typing import Any

from tchain.intents import sign_intent
from tchain.keys import SigningKey
from tchain.model import SignedIntent
from tchain.plans import Execution, LogDoc, Plan, plan_document, plan_id, sign_log
from tchain.plans.receipts import consent_body
from tchain.records import KeyRecord, make_record
from tests.vectors.generate import PLAN_FILE, PLAN_UUID

T0 = 1_763_700_000_000
B1, B2, B3 = "bank1.example", "bank2.example", "bank3.example"
ALICE, BOB = f"alice*{B1}", f"bob*{B2}"
ALICE_CHAIN, BOB_CHAIN = "a1" * 32, "b2" * 32
SEEDS = {B1: "01", B2: "04", B3: "05", ALICE: "02", BOB: "03"}
KEYS = {name: SigningKey(bytes.fromhex(seed * 32)) for name, seed in SEEDS.items()}
BANK_KEYS = {b: KEYS[b].public_key for b in (B1, B2, B3)}
CHAINS = {ALICE: ALICE_CHAIN, BOB: BOB_CHAIN}
# The file alice writes: she pays 1000 bank1 USD for 10 bank2 BOND held by bob; bank3 watches.
DVP_FILE = PLAN_FILE
DVP_TOML = f"""deadline_in = 600000
participants = [{{bank = "{B1}", role = "contributor"}}, {{bank = "{B2}", role = "contributor"}},
                {{bank = "{B3}", role = "observer"}}]

[[instructions]]
op = "hold"
account = "{ALICE}"
asset = "{B1}:USD"
amount = "1000"

[[instructions]]
op = "hold"
account = "{BOB}"
asset = "{B2}:BOND"
amount = "10"

[[instructions]]
op = "transfer"
hold = 1
to = "{BOB}"

[[instructions]]
op = "transfer"
hold = 2
to = "{ALICE}"
"""


def dvp_document(**changes: Any) -> dict[str, Any]:
    doc = plan_document(copy.deepcopy(DVP_FILE), plan_id_=plan_id(B1, PLAN_UUID),
                        proposer=ALICE, time=T0)
    return {**doc, **changes}


def proposal(doc: dict[str, Any] | None = None, *, by: str = B1) -> LogDoc:
    plan = Plan.from_dict(doc or dvp_document())
    return sign_log(KEYS[by], "proposal", plan=plan.id, plan_digest=plan.digest, by=by,
                    time=T0 + 1, document=plan.doc)


def consent(plan: Plan, who: str, seq: int, *, key: SigningKey | None = None,
            body: dict[str, Any] | None = None) -> SignedIntent:
    """``who``'s signed consent to hold ``seq`` of ``plan`` (by ``key``: a forger's)."""
    return SignedIntent.from_dict(sign_intent(key or KEYS[who], "plan", CHAINS[who], 0, T0 + 2,
                                              body or consent_body(plan, seq)))


def record(who: str, bank: str, *, signer: str | None = None) -> KeyRecord:
    return KeyRecord.from_dict(make_record(KEYS[signer or bank], address=who,
                                           owner=KEYS[who].public_key, chain=CHAINS[who],
                                           validator=bank))


def approval(plan: Plan, bank: str, *, consents: list[SignedIntent] | None = None,
             records: list[KeyRecord] | None = None) -> LogDoc:
    """``bank``'s approval: its customers' consents to their holds, its records of the
    addresses the plan names there."""
    if consents is None:
        consents = [consent(plan, str(i.account), i.seq) for i in plan.holds(bank)]
    return sign_log(KEYS[bank], "approval", plan=plan.id, plan_digest=plan.digest, by=bank,
                    time=T0 + 3, consents=consents,
                    records=records if records is not None else
                    [record(a, bank) for a in plan.named(bank)])


def word(plan: Plan, bank: str, type_: str, **fields: Any) -> LogDoc:
    """Any other log document of ``bank`` on ``plan``."""
    return sign_log(KEYS[bank], type_, plan=plan.id, plan_digest=plan.digest, by=bank,
                    time=fields.pop("time", T0 + 4), **fields)


def approved_dvp() -> Execution:
    ex = Execution.start(proposal(), BANK_KEYS)
    ex = ex.append(approval(ex.plan, B1))
    return ex.append(approval(ex.plan, B2))
