"""The race ADR 0014 left open (its Update, "Left (1)"): bank2 tells bank1 "no" and bank3
"yes" on a reversible question. bank1 learns the equivocation while nothing moved and voids
the plan (alice's hold released); bank3, told "yes", meanwhile does the plan's first
irreversible step, which it alone decides (a transfer between two of its customers, an issue,
or a transfer to the liar's customer, who the liar credits). The plan flips from void to
going on, and the hold bank1 released is gone: one side paid, the other released.

The confirmation round (docs/adr/0014) closes it: the bank that does the first irreversible
step does it (or sends it) only once every contributor confirmed, and a bank that confirmed
follows that bank's word. Three in-process banks; bank2 speaks only through the liar (its own
key). After each flow every asset sums to zero, no hold is open, every chain verifies
offline, every audit is clean, and no honest bank is proven at fault."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tchain.errors import VerificationError
from tchain.plans import LogDoc, sign_log
from tchain.plans.execution import ZERO_COMPLETION
from tchain.plans.proof import plan_default_proof
from tchain.proofs import verify_proof
from tests.helpers import Clock
from tests.interbank_net import Net, NetBank, all_sound
from tests.unit.validator.test_plan_attacks import Banks, lie
from tests.unit.validator.test_plan_equivocation import (
    deliver_to,
    swap_told_by_hand,
    with_erin,
)
from tests.unit.validator.test_plan_equivocation_end import said
from tests.unit.validator.test_plan_races import logs_only, outbox
from tests.unit.validator.test_plans import B1, B2, B3, consent, state, three_banks
from validator.plans import Plans


@pytest.fixture
def net(tmp_path: Path) -> Banks:
    """Banks 1, 2 and 3 on one clock; erin (100 GBP) and dave at bank3."""
    network, banks, people = with_erin(tmp_path)
    people["dave"] = banks[B3].join("dave")
    return network, banks, people


def _plan(first: dict[str, Any]) -> dict[str, Any]:
    """alice's 100 USD (bank1) and erin's 100 GBP (bank3) held; then ``first``, the first
    irreversible step, bank3's to decide; then alice pays erin (and erin alice, if
    ``first`` did not take erin's hold)."""
    return {"deadline_in": 20_000,
            "participants": [{"bank": b, "role": "contributor"} for b in (B1, B2, B3)],
            "instructions": [
                {"op": "hold", "account": f"alice*{B1}", "asset": f"{B1}:USD", "amount": "100"},
                {"op": "hold", "account": f"erin*{B3}", "asset": f"{B3}:GBP", "amount": "100"},
                first,
                {"op": "transfer", "hold": 1, "to": f"erin*{B3}"},
                *([] if first.get("hold") == 2 else  # erin's GBP paid to alice at last
                  [{"op": "transfer", "hold": 2, "to": f"alice*{B1}"}])]}


INTRA = {"op": "transfer", "hold": 2, "to": f"dave*{B3}"}  # erin pays dave, inside bank3
ISSUE = {"op": "issue", "account": B3, "asset": f"{B3}:GBP", "amount": "5", "to": f"dave*{B3}"}
TO_LIAR = {"op": "transfer", "hold": 2, "to": f"bob*{B2}"}  # erin pays bob, at the liar


def _yes_to_the_plan(banks: dict[str, NetBank], plan: str) -> LogDoc:
    """bank2's approval of the plan (its key records of what the plan names there)."""
    ex = state(banks[B1], plan)
    with banks[B2].ledger.store.read() as r:
        records = [Plans(banks[B2].ledger)._record(r, a) for a in ex.plan.named(B2)]
    return said(banks[B2], banks[B1], plan, "approval", consents=[], records=records)


def _told(banks: dict[str, NetBank], plan: str, to_bank1: LogDoc, to_bank3: LogDoc) -> None:
    for honest, w in ((banks[B1], to_bank1), (banks[B3], to_bank3)):
        assert lie(banks[B2], honest, [*state(honest, plan).docs, w])["type"] == "ack"


def hold_approved_but_by_the_liar(network: Net, banks: dict[str, NetBank],
                                  people: dict[str, Any], file: dict[str, Any]) -> str:
    """``file`` approved by all (bank2 through the liar), alice's hold approved by all,
    erin's hold done and approved by bank1; bank2's word on erin's hold not yet said. Only
    plan logs travel. The plan id."""
    ex, _ = Plans(banks[B1].ledger).propose(people["alice"].key.public_key, file)
    plan = ex.plan.id
    logs_only(network, banks)
    banks[B2].up = False
    if B2 not in state(banks[B1], plan).approvals:
        yes = _yes_to_the_plan(banks, plan)
        _told(banks, plan, yes, yes)
    for name, bank in (("alice", B1), ("erin", B3)):
        Plans(banks[bank].ledger).consent(plan, consent(banks[bank], people[name], plan))
    for _ in range(30):
        for b in (banks[B1], banks[B3]):
            st = state(b, plan).instructions[1]
            if st.completion is not None and B2 not in st.approvals:
                _told_one(banks, b, plan, "completion_approval", seq=1,
                          completion=st.completion.id)
            b.interbank.tick()
        deliver_to(network, banks[B1], B3, "plan")
        deliver_to(network, banks[B3], B1, "plan")
        st2 = state(banks[B3], plan).instructions[2]
        if st2.completion is not None and B1 in st2.approvals:
            return plan
    raise AssertionError("erin's hold was never done and approved by bank1")


def _told_one(banks: dict[str, NetBank], to: NetBank, plan: str, type_: str,
              **fields: Any) -> None:
    w = said(banks[B2], to, plan, type_, **fields)
    assert lie(banks[B2], to, [*state(to, plan).docs, w])["type"] == "ack"


def on_erins_hold(banks: dict[str, NetBank], plan: str, approve: bool) -> LogDoc:
    """bank2's approval (or rejection) of erin's hold, as bank3 logged it."""
    completion = state(banks[B3], plan).instructions[2].completion
    assert completion is not None
    if approve:
        return said(banks[B2], banks[B3], plan, "completion_approval", seq=2,
                    completion=completion.id)
    return said(banks[B2], banks[B3], plan, "completion_rejection", seq=2,
                completion=completion.id, error="bad_request", reason="no")


def equivocate_on_erins_hold(banks: dict[str, NetBank], plan: str) -> None:
    """bank2 rejects erin's hold to bank1 and approves it to bank3."""
    _told(banks, plan, on_erins_hold(banks, plan, False), on_erins_hold(banks, plan, True))


def nothing_moved_and_every_hold_released(banks: dict[str, NetBank], people: dict[str, Any],
                                          plan: str) -> None:
    """The plan compensated at both honest banks (aborted by its decider, bank3), bank2 its
    culprit; alice and erin have what they had, dave nothing; bank2 is the only bank proven
    at fault."""
    for b in (B1, B3):
        ex = state(banks[b], plan)
        assert (ex.state, ex.culprit) == ("compensated", B2), (b, ex.state, ex.culprit)
        for p in banks[b].interbank.proofs():
            assert verify_proof(p).culprit == banks[B2].key.public_key, p["type"]
    assert banks[B1].balance(people["alice"], f"{B1}:USD") == (5000, 0)
    assert banks[B3].balance(people["erin"], f"{B3}:GBP") == (100, 0)
    assert banks[B3].balance(people["dave"], f"{B3}:GBP") == (0, 0)
    assert banks[B3].balance(people["erin"], f"{B1}:USD") == (0, 0)


@pytest.mark.parametrize("first", [INTRA, ISSUE], ids=["intra-bank transfer", "issue"])
def test_the_race_with_a_step_bank3_alone_decides_moves_nothing(net: Banks,
                                                                first: dict[str, Any]) -> None:
    """bank3, told "yes" on erin's hold, would do the first irreversible step at once (erin
    pays dave, or bank3 issues dave 5 GBP) while bank1, told "no", released alice's hold.
    Now bank3 waits for bank1's confirmation, which never comes; it learns the equivocation
    and aborts; every hold is released and nothing moved."""
    network, banks, people = net
    plan = hold_approved_but_by_the_liar(network, banks, people, _plan(first))
    equivocate_on_erins_hold(banks, plan)
    network.run(50)
    banks[B1].ledger.clock.now += 10**6  # long past every due
    network.run(50)
    nothing_moved_and_every_hold_released(banks, people, plan)
    all_sound(*banks.values(), chains_verify=True)


def test_the_race_with_a_transfer_to_the_liars_customer_moves_nothing(net: Banks) -> None:
    """bank3, told "yes", would send erin's GBP to bob at bank2, which credits its own
    customer at once, while bank1 released alice's hold. Now bank3 sends only once every
    contributor confirmed; bank1 never does, so nothing is sent and erin's hold is
    released."""
    network, banks, people = net
    plan = hold_approved_but_by_the_liar(network, banks, people, _plan(TO_LIAR))
    equivocate_on_erins_hold(banks, plan)
    for _ in range(3):  # the liar credits whatever bank3 sends it, at once
        for m in outbox(banks[B3], "transfer"):
            banks[B2].up = True
            assert lie(banks[B3], banks[B2], list(state(banks[B3], plan).docs))["type"] == "ack"
            network.deliver(banks[B3], m)
            banks[B2].up = False
        logs_only(network, banks, rounds=5)
    network.run(50)
    banks[B1].ledger.clock.now += 10**6
    network.run(50)
    nothing_moved_and_every_hold_released(banks, people, plan)
    assert banks[B2].balance(people["bob"], f"{B3}:GBP") == (0, 0)
    all_sound(*banks.values(), chains_verify=True)


def _approve_erins_hold_to_both(banks: dict[str, NetBank], plan: str) -> None:
    yes = on_erins_hold(banks, plan, True)
    _told(banks, plan, yes, yes)


def test_a_liar_that_withholds_its_confirmation_gets_the_plan_compensated(net: Banks) -> None:
    """bank2 approves everything to both honest banks alike but never confirms. bank3, the
    decider of step 3 (erin pays dave), waits for it until step 3's due, then aborts: every
    hold is released, nothing moved, and no bank is proven at fault (bank2 said nothing
    false; waiting for it was the decider's right)."""
    network, banks, people = net
    plan = hold_approved_but_by_the_liar(network, banks, people, _plan(INTRA))
    _approve_erins_hold_to_both(banks, plan)
    network.run(50)
    for b in (B1, B3):
        ex = state(banks[b], plan)
        assert ex.confirmations.keys() == {B1, B3} and ex.state == "executing", ex.state
    assert banks[B3].balance(people["dave"], f"{B3}:GBP") == (0, 0)
    banks[B1].ledger.clock.now += 10**6  # past step 3's due
    network.run(50)
    for b in (B1, B3):
        assert state(banks[b], plan).state == "compensated", b
        assert banks[b].interbank.proofs() == []
    assert banks[B1].balance(people["alice"], f"{B1}:USD") == (5000, 0)
    assert banks[B3].balance(people["erin"], f"{B3}:GBP") == (100, 0)
    all_sound(*banks.values(), chains_verify=True)


def test_a_liar_that_confirms_to_the_decider_and_says_no_to_the_other_bank(net: Banks) -> None:
    """bank2 approves erin's hold and confirms to bank3, the decider, and rejects erin's
    hold to bank1. bank1 voids the plan and never confirms, so bank3 never goes; it learns
    the equivocation (and the confirmation contradicting the rejection) and aborts."""
    network, banks, people = net
    plan = hold_approved_but_by_the_liar(network, banks, people, _plan(INTRA))
    yes, no = on_erins_hold(banks, plan, True), on_erins_hold(banks, plan, False)
    confirm = said(banks[B2], banks[B3], plan, "confirmation", seq=3)
    assert lie(banks[B2], banks[B3], [*state(banks[B3], plan).docs, yes, confirm])["type"] == \
        "ack"
    assert lie(banks[B2], banks[B1], [*state(banks[B1], plan).docs, no])["type"] == "ack"
    network.run(50)
    banks[B1].ledger.clock.now += 10**6
    network.run(50)
    nothing_moved_and_every_hold_released(banks, people, plan)
    questions = {p["log"][1]["log"]["type"] for p in banks[B1].interbank.proofs()}
    assert "completion_rejection" in questions or "completion_approval" in questions
    all_sound(*banks.values(), chains_verify=True)


def test_a_confirmation_after_the_same_banks_rejection_is_its_equivocation(net: Banks) -> None:
    """bank2 rejects erin's hold to bank1, then sends bank1 its confirmation: two different
    words, proven (the plan_equivocation proof verifies against bank2), and the
    confirmation counts for nothing."""
    network, banks, people = net
    plan = hold_approved_but_by_the_liar(network, banks, people, _plan(INTRA))
    no = on_erins_hold(banks, plan, False)
    assert lie(banks[B2], banks[B1], [*state(banks[B1], plan).docs, no])["type"] == "ack"
    confirm = said(banks[B2], banks[B1], plan, "confirmation", seq=3)
    assert lie(banks[B2], banks[B1], [*state(banks[B1], plan).docs, confirm])["type"] == "ack"
    ex = state(banks[B1], plan)
    assert B2 not in ex.confirmations and ex.equivocators == {B2}
    [proof] = banks[B1].interbank.proofs()
    assert verify_proof(proof).culprit == banks[B2].key.public_key
    assert {d["log"]["type"] for d in proof["log"][1:]} == {"completion_rejection",
                                                            "confirmation"}
    network.run(50)
    banks[B1].ledger.clock.now += 10**6
    network.run(50)
    assert banks[B1].balance(people["alice"], f"{B1}:USD") == (5000, 0)
    assert banks[B3].balance(people["erin"], f"{B3}:GBP") == (100, 0)
    all_sound(*banks.values(), chains_verify=True)


def _bond_issued_by_the_liar() -> dict[str, Any]:
    """bank2 decides the first irreversible step: it issues bob 5 BOND; then alice pays erin
    and erin pays alice."""
    return _plan({"op": "issue", "account": B2, "asset": f"{B2}:BOND", "amount": "5",
                  "to": f"bob*{B2}"})


def says_done(bank: NetBank, message: str, seq: int = 3) -> bool:
    """Whether ``message`` in ``bank``'s outbox carries its done-or-not completion of
    ``seq``."""
    with bank.ledger.store.read() as r:
        item = r.record("outbox", message)
    return item is not None and any(
        d["log"]["type"] == "completion" and d["log"]["by"] == bank.name
        and d["log"]["seq"] == seq for d in item["message"]["message"]["log"])


def test_a_liar_decider_that_says_done_to_one_bank_and_aborted_to_another_is_proven(
        tmp_path: Path) -> None:
    """bank2 decides step 3 (it issues bob 5 BOND). Every contributor confirmed; bank2 does
    the issue and tells bank1, and tells bank3 it aborted. bank3 compensates erin's hold;
    bank1 approved the issue, which bank3 never will: step 3 never completes, so no later
    step runs anywhere. Before, alice's hold waited at bank1 for ever; now bank1, seeing
    bank3 compensate on the abort, compensates too. Both honest banks prove bank2's two
    completions (a word on the other completion no longer makes a log refused whole); no
    value moved between honest customers."""
    clock = Clock()
    network, banks, people = three_banks(tmp_path, lambda: clock)
    people["erin"] = banks[B3].join("erin")
    banks[B3].deposit(people["erin"], 100, "GBP")
    ex, _ = Plans(banks[B1].ledger).propose(people["alice"].key.public_key,
                                            _bond_issued_by_the_liar())
    plan = ex.plan.id
    logs_only(network, banks)
    for name, bank in (("alice", B1), ("erin", B3)):
        Plans(banks[bank].ledger).consent(plan, consent(banks[bank], people[name], plan))
    done_to_bank1_and_aborted_to_bank3(network, banks, plan, 3)
    assert state(banks[B3], plan).state in ("compensating", "compensated")
    banks[B2].up = False
    network.run(50)
    clock.now += 10**6
    network.run(50)
    for b in (B1, B3):
        assert B2 in state(banks[b], plan).equivocators, b
        for p in banks[b].interbank.proofs():
            assert verify_proof(p).culprit == banks[B2].key.public_key, p["type"]
    assert {state(banks[b], plan).state for b in (B1, B3)} == {"compensated"}
    assert banks[B1].balance(people["alice"], f"{B1}:USD") == (5000, 0)
    assert banks[B3].balance(people["erin"], f"{B3}:GBP") == (100, 0)
    assert banks[B3].balance(people["erin"], f"{B1}:USD") == (0, 0)
    assert banks[B2].balance(people["bob"], f"{B2}:BOND") == (55, 0)  # bank2's own issue
    all_sound(*banks.values(), chains_verify=True)


def done_to_bank1_and_aborted_to_bank3(network: Net, banks: dict[str, NetBank], plan: str,
                                       seq: int) -> None:
    """Every word travels, but bank2's done completion of ``seq`` (its step) reaches only
    bank1 (and bank3 through bank1), and bank3 is told first that bank2 failed it (with no
    receipt: for the step it decides, its abort); until bank1 holds the done one."""
    for _ in range(30):
        for bank in banks.values():
            bank.interbank.tick()
            for m in outbox(bank, "plan"):
                if bank is banks[B2] and says_done(bank, m, seq):
                    if state(banks[B3], plan).instructions[seq].completion is None:
                        aborted = said(banks[B2], banks[B3], plan, "completion", seq=seq,
                                       status="failed", receipts=[], error="conflict")
                        lie(banks[B2], banks[B3], [*state(banks[B3], plan).docs, aborted])
                    if peer_of(bank, m) == B3:
                        continue
                network.deliver(bank, m)
        if state(banks[B1], plan).instructions[seq].completion is not None:
            return
    raise AssertionError(f"bank2 never did step {seq}")


def peer_of(bank: NetBank, message: str) -> str | None:
    with bank.ledger.store.read() as r:
        item = r.record("outbox", message)
    return None if item is None else str(item["peer"])


def test_a_default_against_a_decider_that_waited_for_a_confirmation_proves_nothing(
        net: Banks) -> None:
    """bank3 waits for bank1's confirmation (bank1 voided on bank2's "no"); bank2, the
    payee bank of step 3, signs past the due that nothing came and attests a plan_default
    against bank3 from bank3's own log. bank3 was right to wait: the proof is refused."""
    network, banks, people = net
    plan = hold_approved_but_by_the_liar(network, banks, people, _plan(TO_LIAR))
    yes = on_erins_hold(banks, plan, True)
    assert lie(banks[B2], banks[B3], [*state(banks[B3], plan).docs, yes])["type"] == "ack"
    ex = state(banks[B3], plan)
    assert getattr(ex.turn(), "seq", None) == 3 and not ex.confirmed
    due = ex.due()
    assert due is not None
    late = sign_log(banks[B2].key, "completion_rejection", plan=plan,
                    plan_digest=ex.plan.digest, by=B2, time=due + 1, seq=3,
                    completion=ZERO_COMPLETION, error="expired", reason="nothing came")
    forged = plan_default_proof(banks[B2].key, B2, ex.append(late), 3)
    with pytest.raises(VerificationError, match="due and not done"):
        verify_proof(forged)


def test_a_payee_bank_that_credited_does_not_release_the_other_leg_on_an_equivocation(
        net: Banks) -> None:
    """Attack 12, Finding 2: bank3 credits erin with alice's USD (step 3, the first
    irreversible step, bank1's), then bank2 sends bank3 a rejection of the plan it
    approved. bank3 had no completion of step 3 in its log yet, took the plan for void and
    released erin's hold: alice paid, erin kept both legs. Now bank3 credited only once
    every contributor confirmed, itself too, so it follows the decider (bank1), which went:
    the swap completes and bank2's words count for nothing."""
    network, banks, people = net
    plan = swap_told_by_hand(net)
    for _ in range(30):
        for b in (banks[B1], banks[B3]):
            ex = state(b, plan)
            for seq in (1, 2):
                st = ex.instructions[seq]
                if st.completion is not None and B2 not in st.approvals:
                    _told_one(banks, b, plan, "completion_approval", seq=seq,
                              completion=st.completion.id)
            ex = state(b, plan)
            if ex.turn() == ex.first_irreversible and B2 not in ex.confirmations:
                _told_one(banks, b, plan, "confirmation", seq=3)
            b.interbank.tick()
        deliver_to(network, banks[B1], B3, "plan")
        deliver_to(network, banks[B3], B1, "plan")
        if outbox(banks[B1], "transfer"):
            break
    [transfer] = outbox(banks[B1], "transfer")
    deliver_to(network, banks[B1], B3, "plan")  # bank1's confirmation, then its transfer
    if B2 not in state(banks[B3], plan).confirmations:
        _told_one(banks, banks[B3], plan, "confirmation", seq=3)
    network.deliver(banks[B1], transfer)
    assert banks[B3].balance(people["erin"], f"{B1}:USD") == (100, 0)  # credited
    no = said(banks[B2], banks[B3], plan, "rejection", error="bad_request", reason="no")
    assert lie(banks[B2], banks[B3], [*state(banks[B3], plan).docs, no])["type"] == "ack"
    assert banks[B3].balance(people["erin"], f"{B3}:GBP") == (100, 100)  # still held
    network.run(50)
    for b in (B1, B3):
        ex = state(banks[b], plan)
        assert (ex.state, ex.culprit) == ("completed", B2), (b, ex.state)
    assert banks[B1].balance(people["alice"], f"{B3}:GBP") == (100, 0)
    assert banks[B3].balance(people["erin"], f"{B3}:GBP") == (0, 0)
    all_sound(*banks.values(), chains_verify=True)
