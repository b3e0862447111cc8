"""Every log a bank may hold fits one ``plan`` message (docs/adr/0014, Update: attack 12):
the tester's flood passed the 1000 documents a message carries, and an honest plan of 16
banks and 100 instructions could have too. tchain.plans.bounds counts the most documents a
log can hold (every contributor lying on every question); here that count is checked against
MAX_LOG, and the bytes of such a log, of the largest plan, each document as large as its kind
may be (a real settle receipt, 512-character reasons), against what one message and one
request body carry."""

from __future__ import annotations

from typing import Any

import pytest

from tchain.encoding import canonical
from tchain.errors import BadRequestRuleError
from tchain.intents import sign_intent
from tchain.keys import SigningKey
from tchain.messages import sign_message
from tchain.model import SignedIntent
from tchain.plans import Plan, consent_body, plan_document, plan_id, sign_log
from tchain.plans.bounds import (
    LARGEST_LOG,
    MAX_NEW_INSTRUCTIONS,
    MAX_NEW_PARTICIPANTS,
    max_log_docs,
)
from tchain.plans.log import MAX_REASON
from tchain.plans.questions import ZERO_COMPLETION
from tchain.records import make_record
from tests.unit.validator.test_plan_attacks import Banks, lie
from tests.unit.validator.test_plan_flood import net  # noqa: F401  (the fixture)
from tests.unit.validator.test_plan_flood import (
    test_p7_a_flood_of_approvals_never_leaves_a_swap_half_paid as p7,
)
from tests.unit.validator.test_plans import B1, B2, B3, state
from validator.app import MAX_BODY
from validator.plans import MAX_LOG, MAX_LOG_BYTES, Plans
from validator.sender import BATCH_BYTES

BANKS = [f"bank{i}.example" for i in range(1, MAX_NEW_PARTICIPANTS + 1)]


def test_the_most_documents_a_log_holds_fit_one_message() -> None:
    assert LARGEST_LOG == max_log_docs(MAX_NEW_PARTICIPANTS, MAX_NEW_INSTRUCTIONS) <= MAX_LOG
    assert max_log_docs(16, 100) > MAX_LOG  # the old bounds did not fit (the tester's sum)


def test_the_bytes_of_the_largest_log_fit_one_request(net: Banks) -> None:  # noqa: F811
    """The largest plan (8 contributors, 16 holds each paid to the next bank), every bank
    saying every word it may keep (tchain.plans.bounds), each as large as its kind gets."""
    receipt = _largest_receipt(net)
    keys = {b: SigningKey(bytes([i + 1]) * 32) for i, b in enumerate(BANKS)}
    holds = MAX_NEW_INSTRUCTIONS // 2
    instructions = [{"op": "hold", "account": f"customer{i:02d}*{BANKS[i % len(BANKS)]}",
                     "asset": f"{BANKS[i % len(BANKS)]}:USD", "amount": "1000000000"}
                    for i in range(holds)]
    instructions += [{"op": "transfer", "hold": i + 1,
                      "to": f"payee{i:02d}*{BANKS[(i + 1) % len(BANKS)]}"}
                     for i in range(holds)]
    file = {"deadline_in": 600_000, "instructions": instructions,
            "participants": [{"bank": b, "role": "contributor"} for b in BANKS]}
    now = 1_763_700_000_000
    plan = Plan.from_dict(plan_document(
        file, plan_id_=f"{B1}/106/6f1c2a8e-3b7d-4c21-9a55-0d3e8f7b1c42",
        proposer=f"customer00*{BANKS[0]}", time=now))

    def signed(bank: str, kind: str, **fields: Any) -> int:
        return len(sign_log(keys[bank], kind, plan=plan.id, plan_digest=plan.digest, by=bank,
                            time=now, **fields).raw)

    size = signed(BANKS[0], "proposal", document=plan.doc)
    customer = SigningKey(b"\x09" * 32)
    chain = "ab" * 32
    for bank in BANKS:
        consents = [SignedIntent.from_dict(sign_intent(customer, "plan", chain, 0, now,
                                                       consent_body(plan, i.seq)))
                    for i in plan.holds(bank)]
        records = [make_record(keys[bank], address=a, owner=customer.public_key, chain=chain,
                               validator=bank) for a in plan.named(bank)]
        approval = signed(bank, "approval", consents=consents, records=records)
        no = signed(bank, "rejection", error="unknown_validator", reason="x" * MAX_REASON)
        size += 2 * max(approval, no)
        size += signed(bank, "compensation", receipts=[receipt] * len(plan.holds(bank)))
    completion = signed(BANKS[0], "completion", seq=1, status="done", receipts=[receipt],
                        error=None)
    decision = signed(BANKS[1], "completion_rejection", seq=1, completion=ZERO_COMPLETION,
                      error="unknown_validator", reason="x" * MAX_REASON)
    contributors = len(BANKS)
    size += len(plan.instructions) * (2 * completion + 3 * (contributors - 1) * decision)
    size += 2 * contributors * decision  # the confirmation round's words, as large
    assert size <= MAX_LOG_BYTES, size
    envelope = len(canonical(sign_message(keys[BANKS[0]], "plan", BANKS[0], BANKS[1], now,
                                          log=[])))
    assert MAX_LOG_BYTES + envelope + 64 <= MAX_BODY  # with {"messages": [...]} around it
    assert BATCH_BYTES <= MAX_BODY


def _largest_receipt(net: Banks) -> dict[str, Any]:  # noqa: F811
    """The largest receipt of a real run (p7's swap: a settle, with the payee bank's credit
    as its evidence)."""
    p7(net)
    banks = net[1]
    with banks[B1].ledger.store.read() as r:
        [record] = [rec for _, rec in r.records("plans") if "log" in rec]
    plan = record["log"][0]["log"]["plan"]
    docs = state(banks[B1], plan).docs
    receipts: list[dict[str, Any]] = [r for d in docs if d.type == "completion"
                                      for r in d.body["receipts"]]
    return max(receipts, key=lambda r: len(canonical(r)))


def test_a_new_plan_past_the_bounds_is_refused_an_old_one_still_replays(
        net: Banks) -> None:  # noqa: F811
    """A customer's plan of 9 banks, or 33 instructions, is refused (`bad_request`) and not
    kept; a peer's proposal of one too. A plan document of up to 16 banks and 100
    instructions still parses, so a log or proof kept before replays as it did."""
    banks, people = net[1:]
    wide = {"deadline_in": 600_000,
            "participants": [{"bank": b, "role": "observer"} for b in BANKS[3:]] +
                            [{"bank": b, "role": "contributor"} for b in (B1, B2, B3)] +
                            [{"bank": "bank9.example", "role": "observer"}],
            "instructions": [{"op": "hold", "account": f"alice*{B1}", "asset": f"{B1}:USD",
                              "amount": "1"}, {"op": "release", "hold": 1}]}
    long = {**wide, "participants": [{"bank": b, "role": "contributor"} for b in (B1, B2, B3)],
            "instructions": wide["instructions"] + [{"op": "await", "until": 1}] * 31}
    for file in (wide, long):
        with pytest.raises(BadRequestRuleError, match="at most 8 and 32"):
            Plans(banks[B1].ledger).propose(people["alice"].key.public_key, file)
    now = banks[B1].ledger.clock()
    doc = Plan.from_dict(plan_document(long, plan_id_=plan_id(B1), proposer=f"alice*{B1}",
                                       time=now))  # a document allows it
    answer = lie(banks[B1], banks[B2], [sign_log(
        banks[B1].key, "proposal", plan=doc.id, plan_digest=doc.digest, by=B1, time=now,
        document=doc.doc)])
    assert (answer["type"], answer["error"]) == ("refused", "bad_request"), answer
    with banks[B2].ledger.store.read() as r:
        assert r.records("plans") == []
