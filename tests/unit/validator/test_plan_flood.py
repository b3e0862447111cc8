"""The outside tester's twelfth round, Finding 1 (/work/scratch/attack12-report.md): bank2
floods bank1's log of a plan with approvals of one completion that differ only in ``time``.
Under docs/adr/0014 (first round) each was "redundant" and appended; bank1's log passed the
1000 documents one ``plan`` message carries, every peer refused bank1's log from then on, and
an honest bank was proven at fault (p6_flood) or one side of a swap was paid while the other
stayed held with nobody proven at fault (p7_flood_swap). The property (docs/adr/0014, Update
attack 12): an honest bank signs one word per question, so bank2's second word is its
equivocation, proven; a third is never kept, so every log fits one message. After each flow
every chain verifies, every asset sums to zero, no hold is open, every audit is clean, and no
honest bank is proven at fault."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tchain.plans import LogDoc
from tchain.plans.questions import question
from tchain.proofs import verify_proof
from tests.helpers import Clock
from tests.interbank_net import NetBank, all_sound
from tests.unit.validator.test_plan_attacks import Banks, lie, word
from tests.unit.validator.test_plans import B1, B2, B3, consent, state, three_banks
from validator.plans import MAX_LOG, Plans

FLOOD = 999  # the tester's batch: with the proposal, one message's worth


@pytest.fixture
def net(tmp_path: Path) -> Banks:
    """Banks 1, 2 and 3 on one clock, all up and honest (bank2's key also signs the flood);
    erin at bank3 with 100 GBP."""
    clock = Clock()
    network, banks, people = three_banks(tmp_path, lambda: clock)
    people["erin"] = banks[B3].join("erin")
    banks[B3].deposit(people["erin"], 100, "GBP")
    return network, banks, people


def _contributors(deadline_in: int, instructions: list[dict[str, Any]]) -> dict[str, Any]:
    return {"deadline_in": deadline_in,
            "participants": [{"bank": b, "role": "contributor"} for b in (B1, B2, B3)],
            "instructions": instructions}


def released(net: Banks, before_release: int = 0) -> tuple[str, int]:
    """p6's plan: alice's 1 USD held and released (bank1), then bank1's await 20 s on, all
    three banks contributors; run to the await (the release ``before_release`` ms after the
    plan's time). The plan id and the await's ``until``."""
    network, banks, people = net
    until = banks[B1].ledger.clock() + 20_000
    file = _contributors(6_000, [
        {"op": "hold", "account": f"alice*{B1}", "asset": f"{B1}:USD", "amount": "1"},
        {"op": "release", "hold": 1},
        {"op": "await", "until": until}])
    ex, _ = Plans(banks[B1].ledger).propose(people["alice"].key.public_key, file)
    network.run()
    banks[B1].ledger.clock.now += before_release
    Plans(banks[B1].ledger).consent(ex.plan.id, consent(banks[B1], people["alice"], ex.plan.id))
    network.run(50)
    return ex.plan.id, until


def flood(banks: dict[str, NetBank], plan: str, seq: int, batches: int = 2,
          kind: str = "completion_approval") -> list[str]:
    """bank2's key signs ``batches`` x FLOOD approvals of instruction ``seq``'s completion
    (or, ``kind`` ``confirmation``, confirmations of ``seq``), each dated after that
    completion and 1 ms apart, and sends each batch to bank1 with the proposal. The
    answers' types (or errors)."""
    ex = state(banks[B1], plan)
    completion = ex.instructions[seq].completion
    assert completion is not None
    fields = {"seq": seq} if kind == "confirmation" else \
        {"seq": seq, "completion": completion.id}
    banks[B1].ledger.clock.now = max(banks[B1].ledger.clock(), completion.time + 2 * FLOOD)
    answers = []
    k = 0
    for _ in range(batches):
        docs: list[LogDoc] = []
        for _ in range(FLOOD):
            k += 1
            docs.append(word(banks[B2], plan, kind, time=completion.time + k, **fields))
        answer = lie(banks[B2], banks[B1], [ex.docs[0], *docs])
        answers.append(answer.get("error") or answer["type"])
    return answers


def outlasts_the_flood(net: Banks, plan: str, seq: int, until: int,
                       kind: str = "completion_approval") -> None:
    """bank2 floods bank1 (:func:`flood`): its second word is kept, no third; then past
    ``until`` and every due the plan is completed at every bank, the logs bounded and no
    honest bank proven at fault."""
    network, banks, _ = net
    answers = flood(banks, plan, seq, kind=kind)
    assert answers == ["ack", "conflict"], answers
    bounded(banks, plan)
    banks[B1].ledger.clock.now = until
    network.run(50)
    banks[B1].ledger.clock.now += 60_000  # long past every due
    network.run(50)
    assert {state(b, plan).state for b in banks.values()} == {"completed"}
    no_honest_bank_at_fault(banks)
    bounded(banks, plan)


def bounded(banks: dict[str, NetBank], plan: str) -> None:
    """Every bank's log of ``plan`` fits one message, and holds at most two words of a bank
    on one question, one of an honest bank."""
    for b in banks.values():
        docs = state(b, plan).docs
        assert len(docs) <= MAX_LOG, (b.name, len(docs))
        words = Counter((d.by, question(d)) for d in docs if question(d) is not None)
        assert max(words.values()) <= 2, (b.name, words.most_common(1))
        # the honest banks never sign a second word on a question
        assert all(n == 1 for (by, _), n in words.items() if by != B2), (b.name, words)


def no_honest_bank_at_fault(banks: dict[str, NetBank]) -> None:
    """Every proof any bank keeps is against bank2."""
    for b in banks.values():
        for p in b.interbank.proofs():
            assert verify_proof(p).culprit == banks[B2].key.public_key, (b.name, p["type"])


def test_p6_a_flood_of_approvals_never_gets_honest_bank1_proven_at_fault(net: Banks) -> None:
    """p6_flood: alice's 1 USD held and released (bank1), then bank1's await. bank2 floods
    bank1 with 2 x 999 approvals of the release. Before: bank1's log passed 1000 documents,
    bank3 refused it, never saw the await done, and kept a plan_default against bank1. Now
    bank2's second approval is its proven equivocation, the rest are not kept, bank1's log
    reaches bank3, and the plan completes; the only proof is against bank2."""
    banks, people = net[1:]
    plan, until = released(net)
    assert state(banks[B1], plan).instructions[2].completion is not None
    outlasts_the_flood(net, plan, 2, until)
    assert [p["type"] for p in banks[B1].interbank.proofs()] == ["plan_equivocation"]
    assert banks[B1].balance(people["alice"], f"{B1}:USD") == (5000, 0)
    all_sound(*banks.values(), chains_verify=True)


def test_p7_a_flood_of_approvals_never_leaves_a_swap_half_paid(net: Banks) -> None:
    """p7_flood_swap: erin's 20 GBP to alice (bank3 to bank1), bank3's await, then alice's 20
    USD to erin (bank1 to bank3). bank2 floods bank1 once step 3 is complete. Before: bank1's
    approval of the await never reached bank3, bank3 answered bank1's transfer `pending` for
    ever: alice had both legs' worth, her USD held for good, nobody proven at fault. Now the
    swap completes everywhere."""
    network, banks, people = net
    until = banks[B1].ledger.clock() + 12_000
    file = _contributors(8_000, [
        {"op": "hold", "account": f"alice*{B1}", "asset": f"{B1}:USD", "amount": "20"},
        {"op": "hold", "account": f"erin*{B3}", "asset": f"{B3}:GBP", "amount": "20"},
        {"op": "transfer", "hold": 2, "to": f"alice*{B1}"},
        {"op": "await", "until": until},
        {"op": "transfer", "hold": 1, "to": f"erin*{B3}"}])
    file["instructions"][3]["bank"] = B3
    ex, _ = Plans(banks[B1].ledger).propose(people["alice"].key.public_key, file)
    plan = ex.plan.id
    network.run()
    for name, bank in (("alice", B1), ("erin", B3)):
        Plans(banks[bank].ledger).consent(plan, consent(banks[bank], people[name], plan))
        network.run(50)
    assert state(banks[B3], plan).status(3) == "complete"
    assert state(banks[B1], plan).instructions[3].completion is not None
    outlasts_the_flood(net, plan, 3, until)
    assert banks[B1].balance(people["alice"], f"{B3}:GBP") == (20, 0)
    assert banks[B3].balance(people["erin"], f"{B1}:USD") == (20, 0)
    assert banks[B1].balance(people["alice"], f"{B1}:USD") == (4980, 0)
    all_sound(*banks.values(), chains_verify=True)


def test_a_flood_of_confirmations_is_proven_and_never_grows_the_log(net: Banks) -> None:
    """The same flood with bank2's confirmations of the plan's first irreversible step (the
    release, docs/adr/0014's confirmation round): two confirmations are two words on one
    question, so the second is bank2's equivocation and no third is kept; the plan
    completes and the only proof is against bank2."""
    banks = net[1]
    plan, until = released(net)
    assert B2 in state(banks[B1], plan).confirmations
    outlasts_the_flood(net, plan, 2, until, kind="confirmation")
    assert [p["type"] for p in banks[B1].interbank.proofs()] == ["plan_equivocation"]
    all_sound(*banks.values(), chains_verify=True)
