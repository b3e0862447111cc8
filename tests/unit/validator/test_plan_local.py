"""A plan's transfer between two customers of one bank (docs/protocol.md §14): the payee's
credit and the hold's settle in one write, as an intra-bank payment is; the bank is its own
payee bank, so its clock alone says whether it came late, and a late one releases the hold
(the plan fails, every hold released). After each flow: every chain verifies, every asset
sums to zero, no hold is open, every audit is clean."""

from __future__ import annotations

from typing import Any

import pytest

from tchain.errors import BadRequestError
from tchain.plans.receipts import Receipts, check_receipts
from tests.interbank_net import all_sound
from tests.unit.validator.test_plan_races import outbox
from tests.unit.validator.test_plans import B1, B2, bob_signs, dvp, every_state, net, signed, state

__all__ = ["net"]  # the fixture, shared


def to_carol() -> dict[str, Any]:
    """Alice pays carol, her bank's other customer, against bob's BOND from bank2."""
    file = dvp(participants=[{"bank": B1, "role": "contributor"},
                             {"bank": B2, "role": "contributor"}])
    file["instructions"][2]["to"] = f"carol*{B1}"
    return file


def test_a_transfer_between_two_customers_of_one_bank_runs_in_the_plan(net):
    network, banks, people = net
    people["carol"] = banks[B1].join("carol")
    plan = signed(network, banks, people, to_carol(), ("alice", B1), ("bob", B2))
    assert every_state({n: banks[n] for n in (B1, B2)}, plan) == {"completed"}
    assert banks[B1].balance(people["carol"], f"{B1}:USD") == (1000, 0)
    assert banks[B1].balance(people["alice"], f"{B1}:USD") == (4000, 0)
    assert banks[B1].balance(people["alice"], f"{B2}:BOND") == (10, 0)
    [settle] = state(banks[B2], plan).instructions[3].completion.receipts()
    assert settle.kind == "settle" and settle.evidence_entry(0).kind == "credit"
    all_sound(*banks.values(), chains_verify=True)


def test_a_bank_back_past_its_own_transfers_due_releases_it_and_no_other_bank_decides(net):
    """Bob's hold first, then alice's; bank1 goes down once its hold is out, and is back
    past the due of its transfer to carol (whose turn began with bank2's approval of alice's
    hold): bank2 may not call it late (bank1 alone could pay it); bank1's first word is the
    release, and every hold is released."""
    network, banks, people = net
    people["carol"] = banks[B1].join("carol")
    file = to_carol()
    file["instructions"] = [file["instructions"][i] for i in (1, 0, 2, 3)]
    file["instructions"][2]["hold"], file["instructions"][3]["hold"] = 2, 1
    plan = signed(network, banks, people, file, ("alice", B1))
    for m in bob_signs(banks, people, plan):
        network.deliver(banks[B2], m)  # bank1 approves bob's hold, holds alice's
    for m in outbox(banks[B1]):
        network.deliver(banks[B1], m)
    assert state(banks[B2], plan).turn().seq == 3
    banks[B1].up = False
    banks[B1].ledger.clock.now += 2_000_000
    network.run(50)
    assert state(banks[B2], plan).instructions[3].rejections == frozenset()
    assert banks[B2].balance(people["bob"], f"{B2}:BOND") == (50, 10)  # waits for bank1
    banks[B1].up = True
    network.run(50)
    assert every_state({n: banks[n] for n in (B1, B2)}, plan) == {"failed"}
    assert state(banks[B2], plan).instructions[3].completion.body["error"] == "expired"
    assert banks[B1].balance(people["carol"], f"{B1}:USD") == (0, 0)
    assert banks[B1].balance(people["alice"], f"{B1}:USD") == (5000, 0)
    assert banks[B2].balance(people["bob"], f"{B2}:BOND") == (50, 0)
    all_sound(*banks.values(), chains_verify=True)


def bond_at_delivery(to: str) -> dict[str, Any]:
    """Alice pays bob 1000 USD; at delivery bank2 issues 10 BOND to ``to``."""
    return {"deadline_in": 600_000,
            "participants": [{"bank": B1, "role": "contributor"},
                             {"bank": B2, "role": "contributor"}],
            "instructions": [
                {"op": "hold", "account": f"alice*{B1}", "asset": f"{B1}:USD", "amount": "1000"},
                {"op": "transfer", "hold": 1, "to": f"bob*{B2}"},
                {"op": "issue", "account": B2, "asset": f"{B2}:BOND", "amount": "10",
                 "to": to}]}


def test_a_bond_is_issued_at_delivery_by_its_issuers_bank(net):
    network, banks, people = net
    custody = banks[B2].join("alice")  # alice's account at the bond's bank
    plan = signed(network, banks, people, bond_at_delivery(f"alice*{B2}"), ("alice", B1))
    assert every_state({n: banks[n] for n in (B1, B2)}, plan) == {"completed"}
    assert banks[B2].balance(custody, f"{B2}:BOND") == (10, 0)
    assert banks[B2].balance(people["bob"], f"{B1}:USD") == (1000, 0)
    [credit] = state(banks[B1], plan).instructions[3].completion.receipts()
    issue = credit.evidence_entry(0)
    assert issue.kind == "issue" and issue.intent.body.memo == f"plan {plan} instruction 3"
    # a plain deposit of the same bond to the same account is no receipt of the plan's issue
    deposit = banks[B2].ledger.deposit(f"alice*{B2}", f"{B2}:BOND", 10).entries[-1]
    ex = state(banks[B1], plan)
    checks = Receipts(ex.plan, ex.keys, ex.chains, ex.consents, ex.hold_entry)
    with pytest.raises(BadRequestError, match="receipt of issue 3"):
        check_receipts(ex.plan.instruction(3), "done", (deposit,), deposit.time, checks)
    check_receipts(ex.plan.instruction(3), "done", (credit,), credit.time, checks)
    all_sound(*banks.values(), chains_verify=True)


def test_an_issue_to_another_banks_customer_is_rejected_before_anything_moves(net):
    network, banks, people = net
    plan = signed(network, banks, people, bond_at_delivery(f"alice*{B1}"), ("alice", B1))
    assert every_state({n: banks[n] for n in (B1, B2)}, plan) == {"failed"}
    assert state(banks[B1], plan).rejection.body["error"] == "bad_request"
    assert banks[B1].balance(people["alice"], f"{B1}:USD") == (5000, 0)
    all_sound(*banks.values(), chains_verify=True)
