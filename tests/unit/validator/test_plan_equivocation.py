"""The outside tester's tenth round (/work/scratch/attack10-report.md): bank2 signs two
harmless but different words on one question (two ``completion_approval``s of one completion,
1 ms apart) and tells bank1 one and bank3 the other. Before docs/adr/0014 each honest bank
kept the first it got and refused the other's whole log, so they never converged: an honest
bank was proven at fault (Finding 1), or one side of a swap was paid and the other released
(Finding 2). The property: the state is a function of the set of documents; honest banks
converge; a plan ends ``completed``, or ``failed`` with a proof against the bank that did not
do its part, never against an honest one. After each flow every chain verifies, every asset
sums to zero, no hold is open, every audit is clean."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tchain.errors import VerificationError
from tchain.plans import LogDoc, Plan, plan_document, plan_id, sign_log
from tchain.plans.timing import counts_until
from tchain.proofs import verify_proof
from tests.helpers import Clock, Customer
from tests.interbank_net import Net, NetBank, all_sound
from tests.unit.validator.test_plan_attacks import Banks, _bank2s_turn, await_dvp, lie, word
from tests.unit.validator.test_plan_races import logs_only, outbox
from tests.unit.validator.test_plans import (
    B1,
    B2,
    B3,
    consent,
    dvp,
    signed,
    state,
    three_banks,
)
from validator import plans as plans_module
from validator.plans import Plans


def with_erin(tmp_path: Path) -> Banks:
    """Banks 1, 2 and 3 on one clock; erin at bank3 with 100 GBP."""
    clock = Clock()
    network, banks, people = three_banks(tmp_path, lambda: clock)
    people["erin"] = banks[B3].join("erin")
    banks[B3].deposit(people["erin"], 100, "GBP")
    return network, banks, people


@pytest.fixture
def net(tmp_path: Path) -> Banks:
    """Banks 1, 2 and 3 on one clock; erin at bank3 with 100 GBP, carol at bank1."""
    network, banks, people = with_erin(tmp_path)
    people["carol"] = banks[B1].join("carol")
    return network, banks, people


def _all_contribute(instructions: list[dict[str, Any]]) -> dict[str, Any]:
    return {"deadline_in": 20_000,
            "participants": [{"bank": b, "role": "contributor"} for b in (B1, B2, B3)],
            "instructions": instructions}


def swap() -> dict[str, Any]:
    """Finding 2's plan: alice's 100 USD (bank1) for erin's 100 GBP (bank3); bank2 only
    approves."""
    return _all_contribute([
        {"op": "hold", "account": f"alice*{B1}", "asset": f"{B1}:USD", "amount": "100"},
        {"op": "hold", "account": f"erin*{B3}", "asset": f"{B3}:GBP", "amount": "100"},
        {"op": "transfer", "hold": 1, "to": f"erin*{B3}"},
        {"op": "transfer", "hold": 2, "to": f"alice*{B1}"}])

def swap_told_by_hand(net: Banks) -> str:
    """The swap proposed at bank1 and consented by alice and erin, with bank2 down: its words
    are the test's to tell. The plan's id."""
    return consented_with_bank2_down(*net, swap())


def deliver_to(network: Net, sender: NetBank, peer: str, kind: str) -> None:
    for m in outbox(sender, kind):
        with sender.ledger.store.read() as r:
            item = r.record("outbox", m)
        if item is not None and item["peer"] == peer:
            network.deliver(sender, m)


def consented_with_bank2_down(network: Net, banks: dict[str, NetBank],
                              people: dict[str, Customer], file: dict[str, Any]) -> str:
    """``file`` proposed by alice and known to every bank, then bank2 down (its words are
    the test's to tell), alice's and erin's consents given. The plan id."""
    ex, _ = Plans(banks[B1].ledger).propose(people["alice"].key.public_key, file)
    logs_only(network, banks)
    banks[B2].up = False
    for name, bank in (("alice", B1), ("erin", B3)):
        Plans(banks[bank].ledger).consent(ex.plan.id, consent(banks[bank], people[name],
                                                              ex.plan.id))
    return ex.plan.id


def split(network: Net, banks: dict[str, NetBank], people: dict[str, Customer],
          file: dict[str, Any], only_bank3: bool = False) -> tuple[str, LogDoc, LogDoc]:
    """``file`` approved by all, then bank2 speaks only through the liar: it approves steps 1
    and 2 to both honest banks alike, and confirms (docs/adr/0014); bank1 does step 3 and
    bank3 approves it; bank2's two approvals of step 3, 1 ms apart, go one to bank1, the other
    to bank3, before bank3's
    approval reaches bank1 (the tester's race); with ``only_bank3`` bank1 gets neither. The
    plan id and the two words."""
    plan = consented_with_bank2_down(network, banks, people, file)
    honest = (banks[B1], banks[B3])
    for _ in range(30):
        for b in honest:
            for seq in (1, 2):
                st = state(b, plan).instructions[seq]
                if st.completion is not None and B2 not in st.approvals:
                    yes = word(banks[B2], plan, "completion_approval", seq=seq,
                               completion=st.completion.id)
                    lie(banks[B2], b, [*state(b, plan).docs, yes])
            ex = state(b, plan)
            if ex.turn() == ex.first_irreversible and B2 not in ex.confirmations:
                lie(banks[B2], b, [*ex.docs, word(banks[B2], plan, "confirmation", seq=3)])
            b.interbank.tick()
        for sender, peer in ((banks[B1], B3), (banks[B3], B1)):
            for kind in ("plan", "transfer"):
                deliver_to(network, sender, peer, kind)
            if state(banks[B3], plan).instructions[3].completion is not None:
                break
        else:
            continue
        break
    completion = state(banks[B1], plan).instructions[3].completion
    assert completion is not None and B3 in state(banks[B3], plan).instructions[3].approvals
    assert B3 not in state(banks[B1], plan).instructions[3].approvals
    x = word(banks[B2], plan, "completion_approval", seq=3, completion=completion.id)
    y = word(banks[B2], plan, "completion_approval", time=x.time + 1, seq=3,
             completion=completion.id)
    if only_bank3:
        x = y
    else:
        assert lie(banks[B2], banks[B1], [*state(banks[B1], plan).docs, x])["type"] == "ack"
    assert lie(banks[B2], banks[B3], [*state(banks[B3], plan).docs, y])["type"] == "ack"
    return plan, x, y


def back(banks: dict[str, NetBank], plan: str) -> None:
    """bank2 up again, learning first the words its key signed meanwhile (the liar's, as the
    tester's bank2 knew its own) from each honest bank's log, before its clock runs."""
    banks[B2].up = True
    for honest in (banks[B1], banks[B3]):
        assert lie(honest, banks[B2], list(state(honest, plan).docs))["type"] == "ack"


def converged(banks: dict[str, NetBank], plan: str) -> None:
    """bank1 and bank3 hold the same documents of ``plan``, so the same state."""
    logs = [{d.id for d in state(banks[b], plan).docs} for b in (B1, B3)]
    assert logs[0] == logs[1]
    assert state(banks[B1], plan).to_dict()["state"] == state(banks[B3], plan).state


def test_finding2_two_approvals_of_one_completion_do_not_split_a_swap(net: Banks) -> None:
    """bank1 paid erin; bank2's two approvals of that payment split bank1 (step 3 stuck) from
    bank3 (step 4 due): bank3's transfer to alice was refused as late, erin kept both. Two
    words that mean the same are one: each bank appends the other's log, and the swap
    completes everywhere. Since docs/adr/0014's Update (attack 12) an honest bank signs one
    word per question, so the pair is bank2's equivocation, proven; past the irreversible
    step its words count for nothing and the honest banks go on."""
    network, banks, people = net
    plan, x, y = split(network, banks, people, swap())
    network.run(50)
    converged(banks, plan)  # both at step 4, bank3's transfer to alice credited
    assert banks[B1].balance(people["alice"], f"{B3}:GBP") == (100, 0)
    back(banks, plan)  # step 4 waits on bank2's word: it approves when it is back
    network.run(50)
    for b in banks.values():
        ex = state(b, plan)
        assert ex.state == "completed", (b.name, ex.state)
        assert {x.id, y.id} <= {d.id for d in ex.docs}  # both words kept: bank2's lie
    assert banks[B1].balance(people["alice"], f"{B3}:GBP") == (100, 0)
    assert banks[B3].balance(people["erin"], f"{B1}:USD") == (100, 0)
    for b in (banks[B1], banks[B3]):
        assert [verify_proof(p).culprit for p in b.interbank.proofs()] == [
            banks[B2].key.public_key]
    all_sound(*banks.values(), chains_verify=True)


def await_then_release() -> dict[str, Any]:
    """Finding 1's plan: alice pays carol (bank1, irreversible), bank1 awaits 3 s, bank3
    releases erin's hold."""
    return _all_contribute([
        {"op": "hold", "account": f"alice*{B1}", "asset": f"{B1}:USD", "amount": "1"},
        {"op": "hold", "account": f"erin*{B3}", "asset": f"{B3}:GBP", "amount": "1"},
        {"op": "transfer", "hold": 1, "to": f"carol*{B1}"},
        {"op": "await", "until": 0},
        {"op": "release", "hold": 2}])


def test_finding1_two_approvals_never_get_an_honest_bank_proven_at_fault(net: Banks) -> None:
    """bank1 paid carol; bank2's two approvals of that payment left bank1 at step 3 (it never
    got bank3's approval) while bank3 waited for bank1's await, called it late, and kept a
    plan_default proof against honest bank1; erin's hold stayed open. Now the logs converge,
    bank1 does its await, and nobody is proven at fault, however late bank2 comes back."""
    network, banks, people = net
    file = await_then_release()
    until = banks[B1].ledger.clock() + 3_000
    file["instructions"][3]["until"] = until
    plan, _, _ = split(network, banks, people, file)
    banks[B1].ledger.clock.now = until
    network.run(50)
    converged(banks, plan)
    assert state(banks[B1], plan).instructions[4].completion is not None  # bank1's await
    banks[B1].ledger.clock.now += 60_000  # long past every due: bank2 is the one late
    network.run(50)
    assert not [p for b in banks.values() for p in b.interbank.proofs()
                if verify_proof(p).culprit != banks[B2].key.public_key]
    back(banks, plan)
    network.run(50)
    assert {state(b, plan).state for b in banks.values()} == {"completed"}
    assert banks[B1].balance(people["carol"], f"{B1}:USD") == (1, 0)
    assert banks[B3].balance(people["erin"], f"{B3}:GBP") == (100, 0)  # released
    all_sound(*banks.values(), chains_verify=True)


def test_an_approval_to_one_bank_and_a_rejection_to_another_are_proven(net: Banks) -> None:
    """bank2 approves erin's hold (step 2) to bank1 and rejects it to bank3: two different
    words on one question. Each honest bank keeps both words and a plan_equivocation proof
    against bank2 that verifies (and sends its log on, so the other learns the word it was
    not told); the plan fails alike at both. A pair meaning one thing proves it too
    (docs/adr/0014, Update: attack 12)."""
    network, banks, people = net
    plan = swap_told_by_hand(net)
    for _ in range(10):
        for b in (banks[B1], banks[B3]):
            st = state(b, plan).instructions[1]
            if st.completion is not None and B2 not in st.approvals:
                lie(banks[B2], b, [*state(b, plan).docs, word(
                    banks[B2], plan, "completion_approval", seq=1, completion=st.completion.id)])
            b.interbank.tick()
        deliver_to(network, banks[B1], B3, "plan")
        deliver_to(network, banks[B3], B1, "plan")
    completion = state(banks[B3], plan).instructions[2].completion
    assert completion is not None
    yes = word(banks[B2], plan, "completion_approval", seq=2, completion=completion.id)
    no = word(banks[B2], plan, "completion_rejection", seq=2, completion=completion.id,
              error="bad_request", reason="not this hold")
    assert lie(banks[B2], banks[B1], [*state(banks[B1], plan).docs, yes])["type"] == "ack"
    assert lie(banks[B2], banks[B3], [*state(banks[B3], plan).docs, no])["type"] == "ack"
    network.run(50)
    for b in (banks[B1], banks[B3]):
        [proof] = [p for p in b.interbank.proofs() if p["type"] == "plan_equivocation"]
        assert verify_proof(proof).culprit == banks[B2].key.public_key
    # both words in both logs: the plan ended alike at both, culprit bank2 (docs/adr/0014);
    # bank1 had confirmed on bank2's "yes", so bank1, step 3's decider, aborted it and every
    # bank compensated (docs/adr/0014)
    converged(banks, plan)
    assert {(state(banks[b], plan).state, state(banks[b], plan).culprit)
            for b in (B1, B3)} == {("compensated", B2)}
    assert banks[B1].balance(people["alice"], f"{B1}:USD") == (5000, 0)  # nothing moved
    assert banks[B3].balance(people["erin"], f"{B3}:GBP") == (100, 0)
    same = {k: v for k, v in proof.items() if k != "sig"}
    same["log"] = [proof["log"][0], yes.doc, word(banks[B2], plan, "completion_approval",
                                                  time=yes.time + 1, seq=2,
                                                  completion=completion.id).doc]
    same["sig"] = banks[B3].key.sign("proof", same)
    assert verify_proof(same).culprit == banks[B2].key.public_key
    same["log"][2] = same["log"][1]  # one word twice is one word
    del same["sig"]
    same["sig"] = banks[B3].key.sign("proof", same)
    with pytest.raises(VerificationError, match="different answers"):
        verify_proof(same)
    all_sound(*banks.values(), chains_verify=True)


def test_an_approval_told_only_to_the_payer_bank_reaches_the_payee_bank(net: Banks) -> None:
    """Without equivocating: bank2 tells only bank3 its approval of step 3, after bank3
    approved it, so bank3 adds no word of its own and sends no log; bank3's transfer of step
    4 reaches bank1, whose log lacks that approval: it answers `pending` until the message's
    deadline, then refuses it as late, and bank3 releases erin's hold. A payer bank answered
    `pending` sends the payee bank its log with the transfer asked again, so the payee bank
    learns what it lacks, credits alice in time, and the swap completes."""
    network, banks, people = net
    plan, _, _ = split(network, banks, people, swap(), only_bank3=True)
    assert B2 not in state(banks[B1], plan).instructions[3].approvals
    network.run(50)
    converged(banks, plan)
    assert banks[B1].balance(people["alice"], f"{B3}:GBP") == (100, 0)
    back(banks, plan)
    network.run(50)
    assert {state(b, plan).state for b in banks.values()} == {"completed"}
    assert banks[B3].balance(people["erin"], f"{B1}:USD") == (100, 0)
    assert not [p for b in banks.values() for p in b.interbank.proofs()]
    all_sound(*banks.values(), chains_verify=True)


def test_a_transfer_refused_past_its_deadline_carries_the_payee_banks_late_word(
        tmp_path: Path) -> None:
    """A payee bank that refuses a plan's transfer as past the message's deadline logs its
    late word in the same write, whose log shows it due (not only at its next tick), so the
    payer bank's failed completion and the plan's end follow with the proof."""
    clock = Clock()
    network, banks, people = three_banks(tmp_path, lambda: clock)
    plan = _bank2s_turn(network, banks, people)
    [transfer] = outbox(banks[B2], "transfer")
    clock.now += 700_000  # past the due and the message's deadline
    network.deliver(banks[B2], transfer)
    st = state(banks[B1], plan).instructions[4]
    assert B1 in st.rejections and st.completion is None  # said at once, with the refusal
    network.run(50)
    assert {state(b, plan).state for b in banks.values()} == {"failed"}
    [proof] = [p for p in banks[B1].interbank.proofs() if p["type"] == "plan_default"]
    assert verify_proof(proof).culprit == banks[B2].key.public_key
    all_sound(*banks.values(), chains_verify=True)


def test_a_wedged_plan_stops_counting_against_the_open_plans_cap(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """bank1 never does its await (it is down): bank2 keeps the plan `executing` for ever,
    bob's bond owed to alice, with its plan_default proof. It counted against bank1's
    customers' open plans at bank2 for good; once every instruction done in its time would
    have been done (timing.counts_until) it no longer blocks a new plan (MAX_OPEN 1 here)."""
    monkeypatch.setattr(plans_module, "MAX_OPEN", 1)
    clock = Clock()
    network, banks, people = three_banks(tmp_path, lambda: clock)
    until = clock() + 60_000
    plan = signed(network, banks, people, await_dvp(until), ("alice", B1), ("bob", B2))
    banks[B1].up = False
    clock.now += 60_000 + 600_000 + 1
    network.run(50)
    assert state(banks[B2], plan).state == "executing"

    def propose_to_bank2() -> dict[str, Any]:
        now = clock()
        file = {k: v for k, v in dvp(deadline=now + 60_000).items() if k != "deadline_in"}
        doc = plan_document(file, plan_id_=plan_id(B1), proposer=f"alice*{B1}", time=now,
                            confirm=True)
        new = Plan.from_dict(doc)
        return lie(banks[B1], banks[B2], [sign_log(
            banks[B1].key, "proposal", plan=new.id, plan_digest=new.digest, by=B1, time=now,
            document=new.doc)])

    assert propose_to_bank2()["error"] == "limit_exceeded"
    clock.now = counts_until(state(banks[B2], plan).plan) + 1
    assert propose_to_bank2()["type"] == "ack"
    assert state(banks[B2], plan).state == "executing"  # kept: bank1 may still do it late
