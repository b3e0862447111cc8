"""The outside tester's eleventh round (/work/scratch/attack11-report.md): bank2 signs two
different words on one question and tells bank1 one and bank3 the other. Under docs/adr/0014
each honest bank kept the word it got first and proved the other, so the honest banks stayed
apart for good: a hold stayed open for ever (Finding 2), and an honest bank was proven at
fault by a valid plan_default for a step whose turn came only on the liar's word (Finding 1).
The property (docs/adr/0014): once both words are known the outcome is a function of the set
of documents; every bank ends the plan the same way, with the equivocator as its culprit, and
no bank says "late" of, or proves a default on, a step that waited on the equivocated
question. After each flow every chain verifies, every asset sums to zero, no hold is open,
every audit is clean."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tchain.plans import Execution, LogDoc, sign_log
from tchain.plans.equivocation import plan_equivocation_proof
from tchain.plans.execution import ZERO_COMPLETION
from tchain.plans.proof import plan_default_proof
from tchain.plans.questions import question
from tchain.proofs import verify_proof
from tests.helpers import Clock
from tests.interbank_net import NetBank, all_sound
from tests.unit.validator.test_plan_attacks import Banks, await_dvp, lie, swapped
from tests.unit.validator.test_plan_equivocation import split, swap
from tests.unit.validator.test_plan_races import logs_only
from tests.unit.validator.test_plans import B1, B2, B3, consent, signed, state, three_banks
from validator.plans import Plans


@pytest.fixture
def net(tmp_path: Path) -> Banks:
    """Banks 1, 2 and 3 on one clock; erin at bank3 with 100 GBP; bank2 down from the start
    (it speaks only through the liar, with its own key)."""
    clock = Clock()
    network, banks, people = three_banks(tmp_path, lambda: clock)
    people["erin"] = banks[B3].join("erin")
    banks[B3].deposit(people["erin"], 100, "GBP")
    banks[B2].up = False
    return network, banks, people


def said(liar: NetBank, honest: NetBank, plan: str, type_: str, **fields: Any) -> LogDoc:
    """``liar``'s signed word on ``plan`` (as ``honest`` knows the plan)."""
    ex = state(honest, plan)
    return sign_log(liar.key, type_, plan=plan, plan_digest=ex.plan.digest, by=liar.name,
                    time=liar.ledger.clock(), **fields)


def told(banks: dict[str, NetBank], plan: str, to_bank1: LogDoc, to_bank3: LogDoc) -> None:
    """bank2 tells bank1 one word and bank3 the other, each with that bank's own log."""
    for honest, word in ((banks[B1], to_bank1), (banks[B3], to_bank3)):
        assert lie(banks[B2], honest, [*state(honest, plan).docs, word])["type"] == "ack"


def ended_alike(banks: dict[str, NetBank], plan: str, end: str = "failed") -> None:
    """bank1 and bank3 hold the same documents, the plan ``end``ed at both with bank2 its
    culprit (each keeps the plan_equivocation proof), and no bank holds any other proof.
    A plan its decider aborted, once a bank confirmed, ends ``compensated`` (docs/adr/0014)."""
    logs = [{d.id for d in state(banks[b], plan).docs} for b in (B1, B3)]
    assert logs[0] == logs[1]
    for b in (B1, B3):
        ex = state(banks[b], plan)
        assert (ex.state, ex.culprit) == (end, B2), (b, ex.state, ex.culprit)
        proofs = banks[b].interbank.proofs()
        assert [p["type"] for p in proofs] == ["plan_equivocation"], proofs
        assert verify_proof(proofs[0]).culprit == banks[B2].key.public_key


def test_finding2_an_approval_to_one_bank_and_a_rejection_to_another_end_the_plan(
        net: Banks) -> None:
    """x1: bank2 approves the plan to bank1 and rejects it to bank3. bank1 held alice's USD
    and waited for ever on bank3's word on it; bank3 had failed. Now both fail the plan,
    culprit bank2, and alice's hold is released."""
    network, banks, people = net
    ex, _ = Plans(banks[B1].ledger).propose(people["alice"].key.public_key, swap())
    plan = ex.plan.id
    logs_only(network, banks)
    for name, bank in (("alice", B1), ("erin", B3)):
        Plans(banks[bank].ledger).consent(plan, consent(banks[bank], people[name], plan))
    logs_only(network, banks)
    yes = said(banks[B2], banks[B1], plan, "approval", consents=[], records=[])
    no = said(banks[B2], banks[B1], plan, "rejection", error="bad_request", reason="no")
    told(banks, plan, yes, no)
    network.run(50)
    banks[B1].ledger.clock.now += 10**6  # long past every due: nothing more happens
    network.run(50)
    ended_alike(banks, plan)
    assert banks[B1].balance(people["alice"], f"{B1}:USD") == (5000, 0)
    assert banks[B3].balance(people["erin"], f"{B3}:GBP") == (100, 0)
    all_sound(*banks.values(), chains_verify=True)


def hold_then_release() -> dict[str, Any]:
    """x3's plan: alice's 2 USD held (reversible), then released (irreversible, owed)."""
    return {"deadline_in": 8_000,
            "participants": [{"bank": b, "role": "contributor"} for b in (B1, B2, B3)],
            "instructions": [
                {"op": "hold", "account": f"alice*{B1}", "asset": f"{B1}:USD", "amount": "2"},
                {"op": "release", "hold": 1}]}


def holds_then_releases() -> dict[str, Any]:
    """x2's plan: alice's 3 USD (bank1) and erin's 3 GBP (bank3) held, then released."""
    file = hold_then_release()
    file["instructions"] = [
        {"op": "hold", "account": f"alice*{B1}", "asset": f"{B1}:USD", "amount": "3"},
        {"op": "hold", "account": f"erin*{B3}", "asset": f"{B3}:GBP", "amount": "3"},
        {"op": "release", "hold": 1}, {"op": "release", "hold": 2}]
    return file


@pytest.mark.parametrize("file", [hold_then_release, holds_then_releases], ids=["x3", "x2"])
def test_finding1_an_honest_bank_is_never_proven_at_fault_after_an_equivocation(
        net: Banks, file: Any) -> None:
    """x3: bank2 rejects bank1's hold (step 1) to bank1 and approves it to bank3. bank1
    compensated; bank3 found step 2 (bank1's release) due, then late, and kept a valid
    plan_default against honest bank1. x2: the same, and bank3 then held erin's GBP, which
    stayed held for ever. Now both fail the plan, culprit bank2, nobody says a step came
    late, and every hold is released."""
    network, banks, people = net
    ex, _ = Plans(banks[B1].ledger).propose(people["alice"].key.public_key, file())
    plan = ex.plan.id
    logs_only(network, banks)
    yes0 = said(banks[B2], banks[B1], plan, "approval", consents=[], records=[])
    told(banks, plan, yes0, yes0)
    Plans(banks[B1].ledger).consent(plan, consent(banks[B1], people["alice"], plan))
    if file is holds_then_releases:
        Plans(banks[B3].ledger).consent(plan, consent(banks[B3], people["erin"], plan))
    logs_only(network, banks)
    completion = state(banks[B1], plan).instructions[1].completion
    assert completion is not None and B3 in state(banks[B1], plan).instructions[1].approvals
    no = said(banks[B2], banks[B1], plan, "completion_rejection", seq=1,
              completion=completion.id, error="bad_request", reason="no")
    yes = said(banks[B2], banks[B1], plan, "completion_approval", seq=1,
               completion=completion.id)
    told(banks, plan, no, yes)
    network.run(50)
    banks[B1].ledger.clock.now += 10**6  # long past step 2's due
    network.run(50)
    # x3: bank3 confirmed on bank2's "yes", so bank1, step 2's bank, aborts it; x2: no bank
    # reached the confirmation, the plan is void (docs/adr/0014)
    ended_alike(banks, plan, "compensated" if file is hold_then_release else "failed")
    assert banks[B1].balance(people["alice"], f"{B1}:USD") == (5000, 0)
    assert banks[B3].balance(people["erin"], f"{B3}:GBP") == (100, 0)
    if file is holds_then_releases:  # erin's GBP was held on bank2's approval, and released
        assert state(banks[B1], plan).hold_entry(2) is not None
        assert B3 in state(banks[B1], plan).compensations
    all_sound(*banks.values(), chains_verify=True)


def test_past_an_irreversible_step_the_honest_banks_go_on_without_the_equivocator(
        tmp_path: Path) -> None:
    """bank1 paid erin (step 3 of a swap, irreversible); bank2 approves that payment and
    then, to bank3, rejects it, and is never heard of again. Releasing erin's hold now
    would leave alice paid for nothing: instead bank2's words count for nothing, bank3 pays
    alice, and the swap completes at both honest banks without bank2's word on step 4; the
    plan_equivocation proof against bank2 is the only proof anywhere."""
    clock = Clock()
    network, banks, people = three_banks(tmp_path, lambda: clock)
    people["erin"] = banks[B3].join("erin")
    banks[B3].deposit(people["erin"], 100, "GBP")
    plan, _, yes = split(network, banks, people, swap())
    completion = state(banks[B3], plan).instructions[3].completion
    assert completion is not None
    no = sign_log(banks[B2].key, "completion_rejection", plan=plan,
                  plan_digest=state(banks[B3], plan).plan.digest, by=B2,
                  time=yes.time + 2, seq=3, completion=completion.id, error="bad_request",
                  reason="no")
    assert lie(banks[B2], banks[B3], [*state(banks[B3], plan).docs, no])["type"] == "ack"
    network.run(50)
    banks[B1].ledger.clock.now += 10**6
    network.run(50)
    # each keeps bank2's first two words on step 3 it got (an equivocation either way), and
    # no third (docs/adr/0014, Update: attack 12): the rest of the logs agree
    three = ("decision", 3)
    logs = [{d.id for d in state(banks[b], plan).docs if (d.by, question(d)) != (B2, three)}
            for b in (B1, B3)]
    assert logs[0] == logs[1]
    for b in (B1, B3):
        assert len([d for d in state(banks[b], plan).docs
                    if (d.by, question(d)) == (B2, three)]) == 2
        ex = state(banks[b], plan)
        assert (ex.state, ex.culprit) == ("completed", B2), (b, ex.state)
        assert [p["type"] for p in banks[b].interbank.proofs()] == ["plan_equivocation"]
    assert banks[B1].balance(people["alice"], f"{B3}:GBP") == (100, 0)
    assert banks[B3].balance(people["erin"], f"{B1}:USD") == (100, 0)
    all_sound(*banks.values(), chains_verify=True)


def test_finding3_a_default_attested_from_a_log_cut_short_is_rebutted_by_the_reporters_word(
        tmp_path: Path) -> None:
    """x5: a plan completed; bank2 attests a plan_default against bank1 from bank1's log cut
    before bank1's await (step 4) and bank2's approval of it, plus its own word, dated past
    the due, that nothing came. The proof replays what it carries, so it verifies. bank1
    rebuts it with bank2's own approval of step 4, dated before that word: an honest bank
    says "late" before it approves a step done late, never after, so the pair is a
    plan_equivocation proof against bank2 (``tchain proof verify``); bank1, sent the word,
    keeps that proof itself, and its plan stays completed."""
    clock = Clock()
    network, banks, people = three_banks(tmp_path, lambda: clock)
    until = clock() + 60_000
    plan = signed(network, banks, people, await_dvp(until), ("alice", B1), ("bob", B2))
    clock.now += 60_000
    swapped(network, banks, people, plan)
    ex = state(banks[B1], plan)
    done = ex.instructions[4].completion
    assert done is not None
    cut = Execution.replay(ex.docs[:ex.docs.index(done)], ex.keys)
    due = cut.due()
    assert getattr(cut.turn(), "seq", None) == 4 and due is not None
    no = sign_log(banks[B2].key, "completion_rejection", plan=plan, plan_digest=ex.plan.digest,
                  by=B2, time=due + 1, seq=4, completion=ZERO_COMPLETION, error="expired",
                  reason="nothing came")
    forged = plan_default_proof(banks[B2].key, B2, cut.append(no), 4)
    assert verify_proof(forged).culprit == banks[B1].key.public_key  # what its log shows
    [yes] = [d for d in ex.docs if (d.by, d.type) == (B2, "completion_approval") and
             d.body["seq"] == 4]
    rebuttal = plan_equivocation_proof(banks[B1].key, B1, ex, yes, no)
    assert verify_proof(rebuttal).culprit == banks[B2].key.public_key
    clock.now = max(clock.now, no.time)
    assert lie(banks[B2], banks[B1], [*ex.docs, no])["type"] == "ack"
    assert state(banks[B1], plan).state == "completed"
    [kept] = [p for p in banks[B1].interbank.proofs() if p["type"] == "plan_equivocation"]
    assert verify_proof(kept).culprit == banks[B2].key.public_key
    all_sound(*banks.values(), chains_verify=True)
